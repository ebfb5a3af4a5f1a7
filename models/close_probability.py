"""Fixed-horizon close probability: P(won within H days of as_of), kept as a baseline of the
served hazard model (:mod:`models.hazard`) and exported as ``p_win_fixed_horizon``.

It trains only on snapshots whose H-day label is known at the cutoff (``as_of + H <=
cutoff``), so its newest label is H days old. LightGBM on the earlier training snapshots
of some deals, calibrated (Platt by default) on the latest slice of *other* deals
(:func:`models.splits.holdout_masks`), then shrunk towards the stage-rate table: the
served probability is ``w * p_lightgbm + (1 - w) * p_stage_rate``, with ``w`` in
``blend_weights`` chosen by log loss on the calibration slice and kept only if its gain
over the table is at least ``guard_z`` deal-clustered standard errors (:mod:`models.guard`).
``w = 0`` means the data holds too little signal to beat the stage-rate table, and the
table is served.

Refit policy: the trees are *not* refitted on the calibration slice (it stays unseen by
them, so calibration and the guard are honest); the stage table is fitted on the earlier
rows for the guard, then refitted on all rows. With ``early_stopping_rounds`` the number of
trees is also chosen on the calibration slice, which makes the guard's figures slightly
optimistic (the backtest is not affected).
"""

from __future__ import annotations

import warnings

import lightgbm
import numpy as np
import pandas as pd
from lightgbm import LGBMClassifier
from sklearn.base import BaseEstimator, ClassifierMixin

from models.baselines import StageRateTable
from models.calibration import calibrate, cross_calibrated
from models.guard import binary_row_loss, choose_weight
from models.metrics import binary_log_loss
from models.preprocess import FeatureMatrix
from models.splits import holdout_masks

MIN_CLASS_ROWS = 10


class CloseProbabilityModel(ClassifierMixin, BaseEstimator):
    """Calibrated, shrunk LightGBM for P(won within the horizon).

    ``X`` is a feature frame with the ``as_of`` key (used only to cut the calibration
    slice: its latest ``calibration_fraction`` of dates). Learned: ``matrix_``
    (:class:`FeatureMatrix`), ``lgbm_`` (or None), ``calibrated_``, ``stage_table_``,
    ``weight_`` (share of the LightGBM probability), ``guard_`` (calibration-slice log
    losses and the decision) and ``calibration_method_``.
    """

    def __init__(
        self,
        *,
        n_estimators: int,
        learning_rate: float,
        num_leaves: int,
        min_child_samples: int,
        reg_lambda: float,
        colsample_bytree: float,
        early_stopping_rounds: int,
        calibration_fraction: float,
        calibration: str,
        min_isotonic_rows: int,
        stage_prior_strength: float,
        blend_weights: tuple[float, ...],
        guard_z: float,
        probability_floor: float,
        n_jobs: int,
        random_state: int,
    ):
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.reg_lambda = reg_lambda
        self.colsample_bytree = colsample_bytree
        self.early_stopping_rounds = early_stopping_rounds
        self.calibration_fraction = calibration_fraction
        self.calibration = calibration
        self.min_isotonic_rows = min_isotonic_rows
        self.stage_prior_strength = stage_prior_strength
        self.blend_weights = blend_weights
        self.guard_z = guard_z
        self.probability_floor = probability_floor
        self.n_jobs = n_jobs
        self.random_state = random_state

    def fit(self, X: pd.DataFrame, y) -> CloseProbabilityModel:
        y = np.asarray(y, bool)
        self.classes_ = np.array([False, True])
        self.matrix_ = FeatureMatrix().fit(X)
        fit_rows, cal_rows = holdout_masks(
            X["as_of"], X["deal_id"],
            calibration_fraction=self.calibration_fraction, seed=self.random_state,
        )  # fmt: skip
        self.stage_table_ = StageRateTable(prior_strength=self.stage_prior_strength)
        self.lgbm_, self.calibrated_, self.calibration_method_ = None, None, None
        self.weight_, self.guard_ = (
            0.0,
            {"decision": "too few rows of each class: serving the stage-rate table"},
        )
        if _trainable(y[fit_rows]) and _trainable(y[cal_rows]):
            self._fit_and_guard(X, y, fit_rows, cal_rows)
        self.stage_table_.fit(X, y)
        return self

    def _fit_and_guard(self, X, y, fit_rows, cal_rows) -> None:
        M = self.matrix_.transform(X)
        self.lgbm_ = fit_lgbm(
            self._lgbm(), M[fit_rows], y[fit_rows], M[cal_rows], y[cal_rows],
            rounds=self.early_stopping_rounds,
        )  # fmt: skip
        self.calibrated_ = calibrate(
            self.lgbm_, M[cal_rows], y[cal_rows],
            method=self.calibration, min_isotonic_rows=self.min_isotonic_rows,
        )  # fmt: skip
        self.calibration_method_ = self.calibrated_.method
        table = self.stage_table_.fit(X[fit_rows], y[fit_rows])
        groups = X["deal_id"].to_numpy()[cal_rows]
        p_model = cross_calibrated(
            self.lgbm_, M[cal_rows], y[cal_rows], groups,
            method=self.calibration, min_isotonic_rows=self.min_isotonic_rows,
        )  # fmt: skip
        p_stage = table.predict_proba(X[cal_rows])[:, 1]
        rows = {
            w: binary_row_loss(y[cal_rows], w * p_model + (1 - w) * p_stage)
            for w in {0.0, *self.blend_weights}
        }
        weight, z = choose_weight(rows, groups, z=self.guard_z)
        self.weight_ = float(weight)
        self.guard_ = {
            "calibration_rows": int(cal_rows.sum()),
            "calibration_deals_unseen_by_trees": int(len(np.unique(groups))),
            "log_loss_lightgbm": binary_log_loss(y[cal_rows], p_model),
            "log_loss_stage_rate": float(rows[0.0].mean()),
            "log_loss_served": float(rows[self.weight_].mean()),
            "gain_z": z,
            "decision": _decision(self.weight_, "stage-rate table"),
        }

    def _lgbm(self) -> LGBMClassifier:
        return LGBMClassifier(
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            num_leaves=self.num_leaves,
            min_child_samples=self.min_child_samples,
            reg_lambda=self.reg_lambda,
            colsample_bytree=self.colsample_bytree,
            subsample=0.8,
            subsample_freq=1,
            random_state=self.random_state,
            n_jobs=self.n_jobs,
            verbose=-1,
        )

    @property
    def too_little_signal(self) -> bool:
        return self.weight_ == 0.0

    def predict_checked(self, X: pd.DataFrame) -> tuple[np.ndarray, list[dict]]:
        """P(won within H) and no drift events: this model keeps no training reference."""
        return self.predict_proba(X)[:, 1], []

    @property
    def explainable(self) -> bool:
        """True when trees take part in the served probability."""
        return self.lgbm_ is not None and self.weight_ > 0

    def contributions(self, X: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame]:
        """(per-feature log-odds contributions of the trees, model matrix) of ``X``."""
        M = self.matrix_.transform(X)
        return np.asarray(self.lgbm_.predict(M, pred_contrib=True))[:, :-1], M

    def predict_lightgbm(self, X: pd.DataFrame) -> np.ndarray:
        """The calibrated LightGBM probability alone (NaN when it was not fitted)."""
        if self.calibrated_ is None:
            return np.full(len(X), np.nan)
        p = self.calibrated_.predict_proba(self.matrix_.transform(X))[:, 1]
        return np.clip(p, self.probability_floor, 1 - self.probability_floor)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        p = self.stage_table_.predict_proba(X)[:, 1]
        if self.weight_ > 0:
            p = self.weight_ * self.predict_lightgbm(X) + (1 - self.weight_) * p
        floor = getattr(self, "probability_floor", 1e-4)  # models pickled by release 0.1
        p = np.clip(p, floor, 1 - floor)
        return np.column_stack([1 - p, p])


def fit_lgbm(model: LGBMClassifier, X, y, eval_X, eval_y, *, rounds: int) -> LGBMClassifier:
    """Fit, early-stopping on (eval_X, eval_y) after ``rounds`` rounds without gain (0 = off).

    ``eval_set`` is deprecated in LightGBM 4.7, but its replacement ``eval_y`` does not
    encode string class labels yet, so the old argument is kept and its warning silenced.
    """
    if rounds <= 0:
        return model.fit(X, y)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*eval_set.*deprecated")
        return model.fit(
            X,
            y,
            eval_set=[(eval_X, eval_y)],
            callbacks=[lightgbm.early_stopping(rounds, verbose=False)],
        )


def _trainable(y: np.ndarray) -> bool:
    return int(y.sum()) >= MIN_CLASS_ROWS and int((~y).sum()) >= MIN_CLASS_ROWS


def _decision(weight: float, baseline: str) -> str:
    if weight == 0.0:
        return f"too little signal: serving the {baseline}"
    if weight < 1.0:
        return f"shrunk towards the {baseline} (model weight {weight:g})"
    return "model beats the baseline on the calibration slice"
