"""A model matrix as the float array LightGBM predicts on, converted once for many boosters.

``lightgbm.Booster.predict`` on a DataFrame converts it on every call (categories re-set to
the training ones, codes, float array): ~8 ms for a few rows, paid per fold booster. The
hazard model's boosters share one training matrix, so :func:`booster_array` converts once
the way LightGBM does (a category's code in the booster's ``pandas_categorical``, missing
or unseen values NaN) and every booster predicts on the same array.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def booster_array(
    Z: pd.DataFrame, pandas_categorical: list[list] | None
) -> np.ndarray | pd.DataFrame:
    """``Z`` as LightGBM's float64 input; ``Z`` itself when its categorical columns do
    not match the booster's (LightGBM then converts, or says what does not match)."""
    kinds = [isinstance(t, pd.CategoricalDtype) for t in Z.dtypes]
    categorical = [c for c, is_cat in zip(Z.columns, kinds, strict=True) if is_cat]
    if len(categorical) != len(pandas_categorical or []) or not len(Z):
        return Z
    out = np.empty(Z.shape, dtype=np.float64)
    numeric = np.flatnonzero(~np.asarray(kinds, dtype=bool))
    if len(numeric):
        out[:, numeric] = Z.iloc[:, numeric].to_numpy(np.float64, na_value=np.nan)
    positions = np.flatnonzero(kinds)
    for j, column, categories in zip(positions, categorical, pandas_categorical or [], strict=True):
        values = Z[column]
        if list(values.cat.categories) != list(categories):
            values = values.cat.set_categories(categories)
        codes = values.cat.codes.to_numpy().astype(np.float64)
        codes[codes < 0] = np.nan
        out[:, j] = codes
    return out
