"""Next stage: the next state a deal enters after as_of (an open stage, won or lost).

LightGBM multiclass on the earlier training snapshots, shrunk towards the empirical
transition matrix: ``w * p_lightgbm + (1 - w) * p_matrix`` with ``w`` in ``blend_weights``
chosen by multiclass log loss on the latest slice of deals the trees never saw
(:func:`models.splits.holdout_masks`), kept only if its gain is at least
``guard_z`` deal-clustered standard errors (``w = 0``: too little signal, the matrix is
served). Output columns are all of ``states``; a state never seen as a next move in
training gets only the matrix's smoothing mass (and ``floor`` at least).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from lightgbm import LGBMClassifier
from sklearn.base import BaseEstimator

from crm.schemas import LOST
from models.baselines import TransitionMatrix
from models.close_probability import _decision, fit_lgbm
from models.guard import choose_weight
from models.lgbm_input import booster_array
from models.preprocess import FeatureMatrix
from models.splits import holdout_masks

MIN_ROWS = 50


class NextStageModel(BaseEstimator):
    """Multiclass next-state probabilities over ``states``; learned ``classes_`` (= states),
    ``seen_`` (classes LightGBM was trained on), ``lgbm_``, ``matrix_model_``, ``weight_``,
    ``guard_``."""

    def __init__(
        self,
        *,
        states: tuple[str, ...],
        n_estimators: int,
        learning_rate: float,
        num_leaves: int,
        min_child_samples: int,
        reg_lambda: float,
        early_stopping_rounds: int,
        calibration_fraction: float,
        alpha: float,
        blend_weights: tuple[float, ...],
        guard_z: float,
        floor: float,
        random_state: int,
    ):
        self.states = states
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.reg_lambda = reg_lambda
        self.early_stopping_rounds = early_stopping_rounds
        self.calibration_fraction = calibration_fraction
        self.alpha = alpha
        self.blend_weights = blend_weights
        self.guard_z = guard_z
        self.floor = floor
        self.random_state = random_state

    def fit(self, X: pd.DataFrame, y) -> NextStageModel:
        y = pd.Series(np.asarray(y, dtype=object)).astype(str).to_numpy()
        self.classes_ = np.array(list(self.states), dtype=object)
        self.matrix_ = FeatureMatrix().fit(X)
        fit_rows, cal_rows = holdout_masks(
            X["as_of"], X["deal_id"],
            calibration_fraction=self.calibration_fraction, seed=self.random_state,
        )  # fmt: skip
        self.lgbm_, self.seen_ = None, np.array([], dtype=object)
        self.weight_, self.guard_ = (
            0.0,
            {"decision": "too few rows to train: serving the transition matrix"},
        )
        seen = np.unique(y[fit_rows])
        if fit_rows.sum() >= MIN_ROWS and cal_rows.sum() >= MIN_ROWS and len(seen) >= 2:
            self._fit_and_guard(X, y, fit_rows, cal_rows)
        self.matrix_model_ = TransitionMatrix(classes=self.states, alpha=self.alpha).fit(X, y)
        return self

    def _fit_and_guard(self, X, y, fit_rows, cal_rows) -> None:
        M = self.matrix_.transform(X)
        self.lgbm_ = LGBMClassifier(
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            num_leaves=self.num_leaves,
            min_child_samples=self.min_child_samples,
            reg_lambda=self.reg_lambda,
            subsample=0.8,
            subsample_freq=1,
            colsample_bytree=0.8,
            random_state=self.random_state,
            n_jobs=1,
            verbose=-1,
        )
        eval_rows = cal_rows & np.isin(y, np.unique(y[fit_rows]))
        fit_lgbm(
            self.lgbm_, M[fit_rows], y[fit_rows], M[eval_rows], y[eval_rows],
            rounds=self.early_stopping_rounds,
        )  # fmt: skip
        self.seen_ = self.lgbm_.classes_
        table = TransitionMatrix(classes=self.states, alpha=self.alpha)
        table.fit(X[fit_rows], y[fit_rows])
        p_model = self._lgbm_frame(M[cal_rows])
        p_matrix = table.predict_proba(X[cal_rows])
        col = pd.Index(self.classes_).get_indexer(y[cal_rows])
        rows = {}
        for w in {0.0, 1.0, *self.blend_weights}:
            p = self._mix(w, p_model, p_matrix).to_numpy()
            p_true = np.where(col >= 0, p[np.arange(len(p)), np.maximum(col, 0)], 0.0)
            rows[w] = -np.log(np.clip(p_true, 1e-6, 1.0))
        candidates = {w: rows[w] for w in {0.0, *self.blend_weights}}
        weight, z = choose_weight(candidates, X["deal_id"].to_numpy()[cal_rows], z=self.guard_z)
        self.weight_ = float(weight)
        self.guard_ = {
            "calibration_rows": int(cal_rows.sum()),
            "log_loss_lightgbm": float(rows[1.0].mean()),
            "log_loss_transition_matrix": float(rows[0.0].mean()),
            "log_loss_served": float(rows[self.weight_].mean()),
            "gain_z": z,
            "decision": _decision(self.weight_, "transition matrix"),
        }

    def _lgbm_frame(self, M: pd.DataFrame) -> np.ndarray:
        """LightGBM probabilities laid out over ``classes_`` (0 for unseen classes)."""
        out = np.zeros((len(M), len(self.classes_)))
        cols = pd.Index(self.classes_).get_indexer(self.seen_)
        # the booster on LightGBM's float input (converted once, as the close model does):
        # the same numbers as ``self.lgbm_.predict_proba(M)`` without its per-call pandas cost
        booster = self.lgbm_.booster_
        p = booster.predict(booster_array(M, booster.pandas_categorical), num_threads=1)
        if p.ndim == 1:  # two classes seen: LightGBM's binary output, as predict_proba lays it
            p = np.vstack((1.0 - p, p)).transpose()
        out[:, cols[cols >= 0]] = p[:, cols >= 0]
        return out

    def _mix(self, w: float, p_model: np.ndarray, p_matrix: np.ndarray) -> pd.DataFrame:
        p = w * p_model + (1 - w) * p_matrix if w > 0 else p_matrix
        p = np.maximum(p, self.floor)
        return pd.DataFrame(p / p.sum(axis=1, keepdims=True), columns=self.classes_)

    @property
    def too_little_signal(self) -> bool:
        return self.weight_ == 0.0

    def predict_proba(self, X: pd.DataFrame) -> pd.DataFrame:
        """Probabilities as a frame: one column per state, rows in X's order."""
        p_matrix = self.matrix_model_.predict_proba(X)
        p_model = self._lgbm_frame(self.matrix_.transform(X)) if self.weight_ > 0 else 0.0
        return self._mix(self.weight_, p_model, p_matrix).set_axis(X.index)

    def predict_matrix_baseline(self, X: pd.DataFrame) -> pd.DataFrame:
        p = self.matrix_model_.predict_proba(X)
        return pd.DataFrame(p, columns=self.classes_, index=X.index)


def consistent_with_close(proba: pd.DataFrame, p_win: np.ndarray) -> pd.DataFrame:
    """Next-state probabilities that agree with the close model.

    A deal whose next move is "lost" cannot be won within the horizon (the contract has no
    reopening), so P(next = lost) <= 1 - p_win. Where the next-stage model says more, the
    excess moves to the other states in proportion to their probabilities. The close
    model is the calibrated one, so it is the one kept.
    """
    if LOST not in proba.columns:
        return proba
    values = proba.to_numpy(float, copy=True)
    j = proba.columns.get_loc(LOST)
    excess = np.maximum(values[:, j] - (1.0 - np.asarray(p_win, float)), 0.0)
    others = np.delete(np.arange(values.shape[1]), j)
    rest = values[:, others].sum(axis=1)
    share = np.divide(
        values[:, others],
        rest[:, None],
        out=np.zeros_like(values[:, others]),
        where=rest[:, None] > 0,
    )
    values[:, others] += share * excess[:, None]
    values[:, j] -= excess
    return pd.DataFrame(values, columns=proba.columns, index=proba.index)
