"""The served close model: a discrete-time competing-risks hazard fitted with LightGBM.

Rows are (snapshot, interval after as_of) pairs (:mod:`models.intervals`): in each interval
an open deal is won, lost or stays open. Every snapshot up to the cutoff is used, each
interval only once it is fully observed at the cutoff, so the newest labels are days old,
not ``H`` days old, and late-recorded or short histories still train. From the hazards:
``p_win`` = P(won within ``horizon_days``) (the exported number), P(won by date) curves
(the forecast) and P(lost).

Honesty measures, in fit order:

1. **drift**: features whose missing share (or unseen categories) at the rows to score
   (``score_X``, the snapshot at the cutoff) differs from training by more than
   ``drift_max`` are left out of the fit (``drift_``, said in every output);
2. **cross-fitting by deal**: deals are split into ``folds``; each fold's trees are fitted
   on the other folds' deals (with early stopping on a further held-out share of deals),
   so every training row gets an out-of-fold score from trees that never saw its deal;
   the served trees are the fold models, averaged;
3. **calibration** (multinomial Platt: a logistic regression on the out-of-fold log-odds),
   which cannot return exactly 0 or 1;
4. **the guard**: the blend ``w * model + (1 - w) * stage table`` with the lowest
   out-of-fold log loss, kept only if its gain is ``guard_z`` deal-clustered standard
   errors (else the stage hazard table is served: "too little signal");
5. **level recalibration**: the won/lost log-odds shifted to fit the latest
   ``recalibration_days`` of interval outcomes (penalised by ``recalibration_prior``
   pseudo-events), for win rates that move;
6. **unmeasured intervals**: an interval no training row reached (a history shorter than
   the horizon, e.g. a backtest a few weeks after a trimmed start) gets the daily rates of
   the nearest earlier measured one (:func:`models.intervals.extend_unobserved`), not
   whatever the trees return for an interval start they never saw;
7. ``probability_floor``: no served probability below it or above ``1 - floor``.
"""

from __future__ import annotations

import lightgbm
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression

from models.baselines import stage_of
from models.drift import drift_table, drifted_features, missing_shares
from models.guard import choose_weight
from models.intervals import (
    EVENTS,
    INTERVAL_COLUMN,
    OPEN,
    QUARTER_POSITION_COLUMN,
    StageHazardTable,
    all_intervals,
    cumulative_incidence,
    extend_unobserved,
    interval_edges,
    interval_rows,
    level_shift,
    observed_intervals,
    row_log_loss,
    shift_log_odds,
    with_interval,
)
from models.lgbm_input import booster_array
from models.preprocess import FeatureMatrix

MIN_EVENTS = 10
EARLY_STOP_SHARE = 0.15


class HazardCloseModel(ClassifierMixin, BaseEstimator):
    """P(won within the horizon) from won/lost/open hazards per interval after as_of.

    ``fit(X, y, score_X=None)``: ``X`` the training snapshots (with ``deal_id`` and
    ``as_of``), ``y`` their labels at the cutoff (``outcome``, ``days_to_close``,
    ``days_observed``, optionally ``entry_days``: see :mod:`models.intervals`), ``score_X``
    the rows the model will score (drift check). Learned: ``edges_``, ``matrix_``,
    ``table_``, ``boosters_``, ``calibrator_``, ``weight_``, ``level_``, ``guard_``,
    ``drift_``, ``observed_``, ``training_``.
    """

    def __init__(
        self,
        *,
        horizon_days: int,
        edges_days: tuple[int, ...],
        folds: int,
        n_estimators: int,
        learning_rate: float,
        num_leaves: int,
        min_child_samples: int,
        reg_lambda: float,
        colsample_bytree: float,
        early_stopping_rounds: int,
        stage_prior_strength: float,
        blend_weights: tuple[float, ...],
        guard_z: float,
        recalibration_days: int,
        recalibration_prior: float,
        probability_floor: float,
        drift_max: float,
        n_jobs: int,
        random_state: int,
    ):
        self.horizon_days = horizon_days
        self.edges_days = edges_days
        self.folds = folds
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.reg_lambda = reg_lambda
        self.colsample_bytree = colsample_bytree
        self.early_stopping_rounds = early_stopping_rounds
        self.stage_prior_strength = stage_prior_strength
        self.blend_weights = blend_weights
        self.guard_z = guard_z
        self.recalibration_days = recalibration_days
        self.recalibration_prior = recalibration_prior
        self.probability_floor = probability_floor
        self.drift_max = drift_max
        self.n_jobs = n_jobs
        self.random_state = random_state

    # ----------------------------------------------------------------- fit
    def fit(self, X: pd.DataFrame, y: pd.DataFrame, score_X: pd.DataFrame | None = None):
        X = X.reset_index(drop=True)
        y = y.reset_index(drop=True)
        self.classes_ = np.array([False, True])
        self.edges_ = interval_edges(self.edges_days, self.horizon_days)
        self.drift_ = drifted_features(X, score_X, drift_max=self.drift_max)
        self.matrix_ = FeatureMatrix(drop=tuple(d["feature"] for d in self.drift_)).fit(X)
        self.reference_missing_ = missing_shares(X, self.matrix_.columns_)
        rows = interval_rows(y, self.edges_)
        self.observed_ = observed_intervals(rows, len(self.edges_))
        stages = stage_of(X)[rows.row]
        self.table_ = StageHazardTable(
            prior_strength=self.stage_prior_strength, n_intervals=len(self.edges_)
        ).fit(stages, rows.k, rows.event)
        self.boosters_, self.calibrator_, self.weight_, self.guard_ = [], None, 0.0, {}
        p_table = self.table_.predict(stages, rows.k)
        served, decision = p_table, "too few won and lost events: serving the stage table"
        deals = X["deal_id"].astype(str).to_numpy()[rows.row]
        if self._trainable(rows.event, deals):
            served, decision = self._fit_trees(X, rows, deals, p_table)
        as_of = pd.DatetimeIndex(X["as_of"]).as_unit("us").asi8[rows.row]
        window = int(self.recalibration_days) * 86_400 * 10**6
        recent = as_of >= as_of.max() - window if len(as_of) else np.zeros(0, bool)
        self.level_ = level_shift(
            served[recent], rows.event[recent], prior=self.recalibration_prior
        )
        self.guard_ = self.guard_ | {
            "decision": decision,
            "level_shift_log_odds": [round(float(v), 4) for v in self.level_],
            "recalibration_rows": int(recent.sum()),
        }
        self.training_ = _training_summary(X, rows, self.edges_, self.observed_)
        return self

    def _trainable(self, event: np.ndarray, deals: np.ndarray) -> bool:
        counts = np.bincount(event, minlength=3)
        return min(counts[1], counts[2]) >= MIN_EVENTS and len(np.unique(deals)) >= 3 * self.folds

    def _fit_trees(self, X, rows, deals, p_table) -> tuple[np.ndarray, str]:
        Z = with_interval(self.matrix_.transform(X), rows.row, rows.k, self.edges_, X["as_of"])
        self.fit_columns_ = list(Z.columns)
        fold = _folds(deals, self.folds, self.random_state)
        oof = np.zeros((len(Z), 3))
        for j in range(self.folds):
            held = fold == j
            booster = self._fit_booster(Z[~held], rows.event[~held], deals[~held], seed=j)
            self.boosters_.append(booster)
            oof[held] = booster.predict(Z[held], raw_score=True, num_threads=self.n_jobs)
        self.calibrator_ = LogisticRegression(C=1e4, max_iter=1000).fit(_log_odds(oof), rows.event)
        p_model = self.calibrator_.predict_proba(_log_odds(oof))
        losses = {
            w: row_log_loss(w * p_model + (1 - w) * p_table, rows.event)
            for w in {0.0, 1.0, *self.blend_weights}
        }
        candidates = {w: losses[w] for w in {0.0, *self.blend_weights}}
        weight, z = choose_weight(candidates, deals, z=self.guard_z)
        self.weight_ = float(weight)
        self.guard_ = {
            "unseen_deal_rows": int(len(Z)),
            "unseen_deals": int(len(np.unique(deals))),
            "log_loss_lightgbm": float(losses[1.0].mean()),
            "log_loss_stage_table": float(losses[0.0].mean()),
            "log_loss_served": float(losses[self.weight_].mean()),
            "gain_z": z,
        }
        served = self.weight_ * p_model + (1 - self.weight_) * p_table
        return served, _decision(self.weight_)

    def _fit_booster(self, Z, event, deals, *, seed: int) -> lightgbm.Booster:
        params = {
            "objective": "multiclass",
            "num_class": 3,
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_child_samples": self.min_child_samples,
            "reg_lambda": self.reg_lambda,
            "colsample_bytree": self.colsample_bytree,
            "subsample": 0.8,
            "subsample_freq": 1,
            "seed": self.random_state + seed,
            "deterministic": True,
            "num_threads": self.n_jobs,
            "verbose": -1,
        }
        stop = _folds(deals, round(1 / EARLY_STOP_SHARE), self.random_state + 101 + seed) == 0
        if self.early_stopping_rounds <= 0 or not stop.any() or stop.all():
            data = lightgbm.Dataset(Z, event)
            return lightgbm.train(params, data, num_boost_round=self.n_estimators)
        train = lightgbm.Dataset(Z[~stop], event[~stop])
        valid = lightgbm.Dataset(Z[stop], event[stop], reference=train)
        return lightgbm.train(
            params,
            train,
            num_boost_round=self.n_estimators,
            valid_sets=[valid],
            callbacks=[lightgbm.early_stopping(self.early_stopping_rounds, verbose=False)],
        )

    # ------------------------------------------------------------- predict
    @property
    def too_little_signal(self) -> bool:
        return self.weight_ == 0.0

    @property
    def explainable(self) -> bool:
        """True when trees take part in the served probability."""
        return bool(self.boosters_) and self.weight_ > 0

    def _stacked(self, X: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
        X = X.reset_index(drop=True)
        row, k = all_intervals(len(X), len(self.edges_))
        return X, row, k

    def _booster_columns(self, Z: pd.DataFrame) -> pd.DataFrame:
        """``Z`` with the columns the trees were fitted on (a model pickled before an
        interval column was added still scores)."""
        columns = getattr(self, "fit_columns_", None)
        if columns is None:
            return Z.drop(columns=[QUARTER_POSITION_COLUMN], errors="ignore")
        return Z[columns]

    def _booster_input(self, Z: pd.DataFrame) -> np.ndarray | pd.DataFrame:
        """``Z`` in the trees' columns, converted once for all fold boosters."""
        return booster_array(self._booster_columns(Z), self.boosters_[0].pandas_categorical)

    def _model_hazards(self, X: pd.DataFrame, row, k) -> np.ndarray:
        Z = with_interval(self.matrix_.transform(X), row, k, self.edges_, X["as_of"])
        Z = self._booster_input(Z)
        # num_threads: a booster read back from its model string predicts with every core
        # (OpenMP), which costs ~8 ms per call on a busy machine for a handful of rows
        raw = np.mean(
            [b.predict(Z, raw_score=True, num_threads=self.n_jobs) for b in self.boosters_], axis=0
        )
        return self.calibrator_.predict_proba(_log_odds(raw))

    def predict_hazards(self, X: pd.DataFrame, *, part: str = "served") -> np.ndarray:
        """``(n, K, 3)`` hazards (open, won, lost) per interval of :attr:`edges_`.

        ``part``: ``served`` (blend + level), ``model`` (calibrated trees alone, NaN when
        none) or ``baseline`` (the stage table + level, the drift fallback).
        """
        X, row, k = self._stacked(X)
        table = self.table_.predict(stage_of(X)[row], k)
        if part == "model":
            if not self.boosters_:
                return np.full((len(X), len(self.edges_), 3), np.nan)
            p = self._model_hazards(X, row, k)
        elif part == "baseline" or self.weight_ == 0.0:
            p = shift_log_odds(table, self.level_)
        else:
            p = self.weight_ * self._model_hazards(X, row, k) + (1 - self.weight_) * table
            p = shift_log_odds(p, self.level_)
        p = p.reshape(len(X), len(self.edges_), 3)
        return extend_unobserved(p, self.edges_, getattr(self, "observed_", None))

    def predict_curve(self, X: pd.DataFrame, *, part: str = "served") -> pd.DataFrame:
        """P(won by) and P(lost by) each interval end: columns ``won_<d>d`` / ``lost_<d>d``."""
        won, lost = cumulative_incidence(self.predict_hazards(X, part=part))
        won, lost = self._bounded(won), self._bounded(lost)
        ends = [int(e) for e in self.edges_]
        cols = {f"won_{d}d": won[:, i] for i, d in enumerate(ends)}
        cols |= {f"lost_{d}d": lost[:, i] for i, d in enumerate(ends)}
        return pd.DataFrame(cols)

    def _bounded(self, p: np.ndarray) -> np.ndarray:
        f = self.probability_floor
        return np.where(np.isnan(p), p, np.clip(p, f, 1 - f))

    def _at_horizon(self, X: pd.DataFrame, part: str) -> np.ndarray:
        won, _ = cumulative_incidence(self.predict_hazards(X, part=part))
        i = int(np.searchsorted(self.edges_, self.horizon_days))
        return self._bounded(won[:, i])

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        p = self._at_horizon(X, "served")
        return np.column_stack([1 - p, p])

    def predict_lightgbm(self, X: pd.DataFrame) -> np.ndarray:
        """P(won within H) of the calibrated trees alone (NaN when none were fitted)."""
        return self._at_horizon(X, "model")

    def predict_baseline(self, X: pd.DataFrame) -> np.ndarray:
        """P(won within H) of the level-recalibrated stage hazard table (drift fallback)."""
        return self._at_horizon(X, "baseline")

    def drift_fallback(self, X: pd.DataFrame) -> tuple[np.ndarray, list[dict]]:
        """Rows to score with the baseline because the model's features drifted.

        Checked one ``as_of`` date at a time (:meth:`drift_at`): where features the model
        uses drifted at a date's rows, the trees would read a field that changed meaning,
        so that date's rows get the baseline (stage hazard table with the level
        recalibration). Returns the row mask and one entry per such date (``as_of``,
        ``rows``, ``drift``).
        """
        X = X.reset_index(drop=True)
        mask, events = np.zeros(len(X), bool), []
        if self.weight_ == 0.0 or not len(X):
            return mask, events
        for when, idx in X.groupby("as_of", sort=True).indices.items():
            drift = self.drift_at(X.iloc[idx])
            if drift:
                mask[idx] = True
                events.append({"as_of": str(when), "rows": int(len(idx)), "drift": drift})
        return mask, events

    def predict_checked(self, X: pd.DataFrame) -> tuple[np.ndarray, list[dict]]:
        """P(won within H) with the drift fallback (:meth:`drift_fallback`), and its dates."""
        X = X.reset_index(drop=True)
        mask, events = self.drift_fallback(X)
        p = self.predict_proba(X)[:, 1]
        if mask.any():
            p[mask] = self.predict_baseline(X[mask])
        return p, events

    def curve_checked(self, X: pd.DataFrame) -> pd.DataFrame:
        """:meth:`predict_curve` with the drift fallback (:meth:`drift_fallback`)."""
        X = X.reset_index(drop=True)
        mask, _ = self.drift_fallback(X)
        curve = self.predict_curve(X)
        if mask.any():
            curve.loc[mask] = self.predict_curve(X[mask], part="baseline").to_numpy()
        return curve

    def drift_at(self, X: pd.DataFrame) -> list[dict]:
        """Features the served model uses whose missing share or categories at ``X`` moved
        by more than ``drift_max`` from training (see :mod:`models.drift`)."""
        return drift_table(
            self.reference_missing_, self.matrix_.categories_, X, drift_max=self.drift_max
        )

    def contributions(self, X: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame]:
        """(per-feature contributions, model matrix) for the log-odds of winning rather
        than staying open in the interval containing ``horizon_days / 4`` (the near-term
        win hazard that drives p_win), averaged over the fold models."""
        X = X.reset_index(drop=True)
        M = self.matrix_.transform(X)
        k = int(np.searchsorted(self.edges_, self.horizon_days / 4))
        Z = with_interval(M, np.arange(len(M)), np.full(len(M), k), self.edges_, X["as_of"])
        Z = self._booster_input(Z)
        width = Z.shape[1] + 1
        parts = []
        for b in self.boosters_:
            c = np.asarray(b.predict(Z, pred_contrib=True, num_threads=self.n_jobs))
            parts.append(c[:, width : 2 * width] - c[:, :width])
        contrib = np.mean(parts, axis=0)[:, : M.shape[1]]
        return contrib, M


def _log_odds(raw: np.ndarray) -> np.ndarray:
    """Won and lost raw scores against the open class's."""
    return raw[:, 1:] - raw[:, [OPEN]]


def _folds(deals: np.ndarray, n: int, seed: int) -> np.ndarray:
    """A fold number 0..n-1 per row, the same for every row of one deal (seeded)."""
    unique, inverse = np.unique(deals, return_inverse=True)
    order = np.random.default_rng(seed).permutation(len(unique))
    return (order % n)[inverse]


def _decision(weight: float) -> str:
    if weight == 0.0:
        return "too little signal on unseen deals: serving the stage table"
    if weight < 1.0:
        return f"shrunk towards the stage table (model weight {weight:g})"
    return "model beats the stage table on deals it never saw"


def _training_summary(X: pd.DataFrame, rows, edges: np.ndarray, observed: np.ndarray) -> dict:
    counts = np.bincount(rows.event, minlength=3)
    return {
        "snapshots": int(len(X)),
        "interval_rows": int(len(rows.event)),
        **{f"{name}_events": int(counts[i]) for i, name in enumerate(EVENTS) if i},
        "latest_as_of": str(pd.Timestamp(X["as_of"].max())) if len(X) else None,
        # intervals (their end, in days) no training row reached: extended, not measured
        "unmeasured_intervals_days": [int(e) for e in edges[~observed]],
    }


__all__ = ["HazardCloseModel", "INTERVAL_COLUMN"]
