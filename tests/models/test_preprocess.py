"""FeatureMatrix: the block conversion gives exactly what a column-by-column one gives."""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.preprocess import FeatureMatrix


def reference(matrix: FeatureMatrix, X: pd.DataFrame) -> pd.DataFrame:
    """The transform as first written: every column parsed on its own, row by row."""
    out = {}
    for c in matrix.columns_:
        values = X[c] if c in X else pd.Series(np.nan, index=X.index)
        if c in matrix.categories_:
            text = values.astype("object").where(values.notna(), None)
            text = text.map(lambda v: None if v is None else str(v))
            known = text.isin(matrix.categories_[c])
            out[c] = pd.Categorical(text.where(known, None), categories=matrix.categories_[c])
        else:
            out[c] = pd.to_numeric(values, errors="coerce").astype("float64").to_numpy()
    return pd.DataFrame(out, index=X.index)


def test_generated_features_transform_as_the_reference(small_backtest):
    X = small_backtest.train.features
    matrix = FeatureMatrix().fit(X)
    assert matrix.categories_, "the generated features have categorical columns"
    for rows in (X, X.iloc[[5, 3, 11]], X.iloc[:0], small_backtest.test.features):
        pd.testing.assert_frame_equal(matrix.transform(rows), reference(matrix, rows))


def test_odd_columns_transform_as_the_reference():
    fit = pd.DataFrame(
        {
            "deal_id": ["a", "b", "c"],
            "deal__industry": pd.Categorical(["x", "y", None]),
            "deal__region": ["eu", "us", "eu"],
            "deal__count": [1, 2, 3],
            "deal__rate": [0.1, np.nan, 0.3],
            "deal__flag": [True, False, True],
            "deal__int": pd.array([1, None, 3], dtype="Int64"),
            "deal__code": pd.Categorical([1, 2, 1]),
        }
    )
    matrix = FeatureMatrix().fit(fit)
    later = pd.DataFrame(
        {
            "deal_id": ["d", "e", "f", "g"],
            "deal__industry": pd.Categorical(["y", "new", None, "x"]),  # unseen -> missing
            "deal__region": ["us", None, "asia", "eu"],
            "deal__count": ["4", "x", None, "5"],  # text in a number column -> parsed
            "deal__rate": [0.5, 0.6, np.nan, 0.7],
            "deal__flag": [False, True, True, False],
            "deal__int": pd.array([None, 7, 8, 9], dtype="Int64"),
            "deal__code": pd.Categorical([2, 3, None, 1]),
        },
        index=[10, 11, 12, 13],
    )
    out = matrix.transform(later)
    pd.testing.assert_frame_equal(out, reference(matrix, later))
    assert out["deal__industry"].isna().tolist() == [False, True, True, False]
    assert out["deal__count"].tolist()[0] == 4.0 and np.isnan(out["deal__count"].tolist()[1])
    missing = matrix.transform(later.drop(columns=["deal__rate", "deal__region"]))
    pd.testing.assert_frame_equal(
        missing, reference(matrix, later.drop(columns=["deal__rate", "deal__region"]))
    )
