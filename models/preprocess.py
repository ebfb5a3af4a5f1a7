"""Feature frame -> model matrix, fitted once in training and reused unchanged in serving.

The categories of every categorical column are fixed at fit: a value unseen in training
becomes missing, so a new owner, industry or product never shifts the encoding. Identity
columns (the deal owner) are dropped: the catalogue calls ``deal__owner_id`` "an identity,
not a behaviour", and the owner's *behaviour* is already in ``owner__*`` rates, so a score
never depends on who the rep is (renaming every owner id changes nothing).
"""

from __future__ import annotations

import functools

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
        """Numbers as float64 (unparseable ones missing), categories as at fit (a value
        unseen at fit missing). Plain numeric columns are converted in one block: the
        per-column cost dominates when a few posted deals are scored."""
        numeric = [c for c in self.columns_ if c not in self.categories_]
        dtypes = X.dtypes.to_dict()
        plain = [c for c in numeric if c in dtypes and _plain_number(dtypes[c])]
        out = pd.DataFrame(
            X[plain].to_numpy(np.float64) if plain else np.empty((len(X), 0)),
            columns=plain,
            index=X.index,
        )
        extra = {}
        for c in self.columns_:
            if c in self.categories_:
                values = X[c] if c in X else pd.Series(np.nan, index=X.index)
                extra[c] = _as_category(values, self.categories_[c])
            elif c not in out:
                values = X[c] if c in X else pd.Series(np.nan, index=X.index)
                extra[c] = pd.to_numeric(values, errors="coerce").astype("float64").to_numpy()
        if extra:
            out = pd.concat([out, pd.DataFrame(extra, index=X.index)], axis=1)
        return out[self.columns_]

    @property
    def feature_names_out_(self) -> list[str]:
        return list(self.columns_)


def _plain_number(dtype) -> bool:
    """A NumPy number or bool column (no missing-value object to parse)."""
    return isinstance(dtype, np.dtype) and dtype.kind in "biuf"


def _as_category(values: pd.Series, categories: list[str]) -> pd.Categorical:
    """``values`` as text in the fitted ``categories`` (others and missing ones missing).
    A categorical column is recoded through its categories, not row by row."""
    dtype, fitted = values.dtype, tuple(categories)
    if isinstance(dtype, pd.CategoricalDtype):
        lookup = _recoding(tuple(dtype.categories), fitted)
        if lookup is not None:
            codes = lookup[values.cat.codes.to_numpy()]  # code -1 (missing) -> last: -1
            return pd.Categorical.from_codes(codes, dtype=_dtype(fitted), validate=False)
    known = set(categories)
    text = (None if pd.isna(v) else str(v) for v in values.astype("object").array)
    return pd.Categorical([t if t in known else None for t in text], categories=categories)


@functools.lru_cache(maxsize=256)
def _recoding(present: tuple, fitted: tuple[str, ...]) -> np.ndarray | None:
    """Fitted code of each present category as text (-1: unseen), then -1 for missing;
    None when two present categories read as the same text."""
    names = [str(v) for v in present]
    if len(set(names)) != len(names):
        return None
    return np.append(pd.Index(fitted, dtype="object").get_indexer(names), -1)


@functools.lru_cache(maxsize=256)
def _dtype(fitted: tuple[str, ...]) -> pd.CategoricalDtype:
    return pd.CategoricalDtype(list(fitted))


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
