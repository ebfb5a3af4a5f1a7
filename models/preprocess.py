"""Feature frame -> model matrix, fitted once in training and reused unchanged in serving.

The categories of every categorical column are fixed at fit: a value unseen in training
becomes missing, so a new owner, industry or product never shifts the encoding. Identity
columns (the deal owner) are dropped: the catalogue calls ``deal__owner_id`` "an identity,
not a behaviour", and the owner's *behaviour* is already in ``owner__*`` rates, so a score
never depends on who the rep is (renaming every owner id changes nothing).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

KEYS = ("deal_id", "as_of")
IDENTITY_COLUMNS = ("deal__owner_id",)


class FeatureMatrix(TransformerMixin, BaseEstimator):
    """Select the model columns and fix their types.

    ``drop`` names extra columns to leave out (besides keys and identities). Output: a
    frame of float64 numbers and pandas categoricals with the categories seen at fit.
    """

    def __init__(self, drop: tuple[str, ...] = ()):
        self.drop = drop

    def fit(self, X: pd.DataFrame, y=None) -> FeatureMatrix:
        skip = set(KEYS) | set(IDENTITY_COLUMNS) | set(self.drop)
        self.columns_ = [c for c in X.columns if c not in skip]
        self.categories_ = {
            c: [str(v) for v in _categories(X[c])] for c in self.columns_ if _is_category(X[c])
        }
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        out = {}
        for c in self.columns_:
            values = X[c] if c in X else pd.Series(np.nan, index=X.index)
            if c in self.categories_:
                text = values.astype("object").where(values.notna(), None)
                text = text.map(lambda v: None if v is None else str(v))
                out[c] = pd.Categorical(text, categories=self.categories_[c])
            else:
                out[c] = pd.to_numeric(values, errors="coerce").astype("float64").to_numpy()
        return pd.DataFrame(out, index=X.index)

    @property
    def feature_names_out_(self) -> list[str]:
        return list(self.columns_)


def _is_category(values: pd.Series) -> bool:
    dtype = values.dtype
    return isinstance(dtype, pd.CategoricalDtype) or not pd.api.types.is_numeric_dtype(dtype)


def _categories(values: pd.Series) -> list:
    if isinstance(values.dtype, pd.CategoricalDtype):
        present = values.dropna().unique()
        return sorted(str(v) for v in present)
    return sorted(str(v) for v in values.dropna().unique())


def logreg_matrix(frame: pd.DataFrame) -> pd.DataFrame:
    """A :class:`FeatureMatrix` output with categoricals as plain strings ("(missing)" for
    NA), ready for one-hot encoding in the logistic-regression baseline."""
    out = frame.copy()
    for c in out.columns:
        if isinstance(out[c].dtype, pd.CategoricalDtype):
            out[c] = out[c].astype("object").where(out[c].notna(), "(missing)").astype(str)
    return out
