"""Baselines, trained and scored on the same rows as the models.

* :class:`BaseRate` - the overall rate of the training rows, with a Jeffreys prior (half a
  positive and half a negative pseudo-row), so no history ever yields exactly 0 or 1;
* :class:`StageRateTable` - the table every CRM ships: the rate of the training rows at the
  same stage, shrunk towards the base rate by ``prior_strength`` pseudo-rows;
* :class:`TransitionMatrix` - the empirical from -> to matrix of next states (skips and
  regressions included) with additive smoothing;
* :func:`logistic_regression` - a regularised logistic regression on the same features.

All read the stage from ``stage__current``; without it (no stage history) every row is one
stage and the stage baselines reduce to the overall rate / distribution.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

STAGE = "stage__current"
ALL = "(all)"


def stage_of(X: pd.DataFrame) -> np.ndarray:
    """The current stage of each row as strings; ``(all)`` when unknown."""
    if STAGE not in X:
        return np.full(len(X), ALL, dtype=object)
    s = X[STAGE].astype("object")
    return s.where(s.notna(), ALL).astype(str).to_numpy(dtype=object)


def prior_rate(y: np.ndarray) -> float:
    """(positives + 1/2) / (rows + 1): the rate with a Jeffreys prior, never 0 or 1."""
    return float((np.sum(y) + 0.5) / (len(y) + 1.0))


class BaseRate(ClassifierMixin, BaseEstimator):
    """The overall positive rate of the training rows, for every row."""

    def fit(self, X: pd.DataFrame, y) -> BaseRate:
        self.rate_ = prior_rate(np.asarray(y, float))
        self.classes_ = np.array([False, True])
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        p = np.full(len(X), self.rate_)
        return np.column_stack([1 - p, p])


class StageRateTable(ClassifierMixin, BaseEstimator):
    """Positive rate by current stage, shrunk towards the overall rate.

    rate(stage) = (positives + prior_strength * base) / (rows + prior_strength); a stage
    unseen in training gets the base rate.
    """

    def __init__(self, *, prior_strength: float):
        self.prior_strength = prior_strength

    def fit(self, X: pd.DataFrame, y) -> StageRateTable:
        y = np.asarray(y, float)
        self.base_rate_ = prior_rate(y)
        frame = pd.DataFrame({"stage": stage_of(X), "y": y})
        g = frame.groupby("stage")["y"].agg(["sum", "count"])
        k = self.prior_strength
        self.table_ = ((g["sum"] + k * self.base_rate_) / (g["count"] + k)).to_dict()
        self.counts_ = g["count"].astype(int).to_dict()
        self.classes_ = np.array([False, True])
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        p = np.array([self.table_.get(s, self.base_rate_) for s in stage_of(X)], float)
        return np.column_stack([1 - p, p])


class TransitionMatrix(BaseEstimator):
    """P(next state | current stage) from counts plus ``alpha`` per cell.

    ``classes`` are the states to predict (e.g. ``funnel.states``); a stage unseen in
    training gets the smoothed overall distribution of next states.
    """

    def __init__(self, *, classes: tuple[str, ...], alpha: float):
        self.classes = classes
        self.alpha = alpha

    def fit(self, X: pd.DataFrame, y) -> TransitionMatrix:
        self.classes_ = np.array(list(self.classes), dtype=object)
        y = pd.Series(np.asarray(y, dtype=object)).astype(str).to_numpy()
        counts = pd.crosstab(pd.Series(stage_of(X), name="from"), pd.Series(y, name="to"))
        counts = counts.reindex(columns=self.classes_, fill_value=0)
        smoothed = counts + self.alpha
        self.matrix_ = smoothed.div(smoothed.sum(axis=1), axis=0)
        overall = counts.sum(axis=0) + self.alpha
        self.overall_ = overall / overall.sum()
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        m = self.matrix_.reindex(stage_of(X))
        m = m.fillna(self.overall_)
        return m.to_numpy(float)


def logistic_regression(*, C: float, random_state: int) -> object:
    """Impute + scale numbers, one-hot categories (unknown -> all zero), L2 logistic
    regression. Expects :func:`models.preprocess.logreg_matrix` output."""
    numbers = make_pipeline(
        SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
        StandardScaler(),
    )
    categories = OneHotEncoder(handle_unknown="ignore", min_frequency=5)
    columns = ColumnTransformer(
        [
            ("num", numbers, make_column_selector(dtype_include="number")),
            ("cat", categories, make_column_selector(dtype_exclude="number")),
        ]
    )
    model = LogisticRegression(C=C, max_iter=2000, random_state=random_state)
    return make_pipeline(columns, model)


class LogisticBaseline(ClassifierMixin, BaseEstimator):
    """:func:`logistic_regression` on the same feature frame as the models (same column
    selection and fixed categories via :class:`models.preprocess.FeatureMatrix`)."""

    def __init__(self, *, C: float, random_state: int):
        self.C = C
        self.random_state = random_state

    def fit(self, X: pd.DataFrame, y) -> LogisticBaseline:
        from models.preprocess import FeatureMatrix, logreg_matrix

        y = np.asarray(y, bool)
        self.classes_ = np.array([False, True])
        self.matrix_ = FeatureMatrix().fit(X)
        self.model_ = None
        self.rate_ = float(y.mean())
        if y.any() and not y.all():
            M = logreg_matrix(self.matrix_.transform(X))
            self.model_ = logistic_regression(C=self.C, random_state=self.random_state)
            self.model_.fit(M, y)
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        from models.preprocess import logreg_matrix

        if self.model_ is None:
            p = np.full(len(X), self.rate_)
        else:
            p = self.model_.predict_proba(logreg_matrix(self.matrix_.transform(X)))[:, 1]
        return np.column_stack([1 - p, p])
