"""The feature frame as a registered (served) model takes it."""

from __future__ import annotations

import pandas as pd


def model_frame(features: pd.DataFrame) -> pd.DataFrame:
    """Features as the served models take them: no deal id, categories as strings, and
    ``as_of`` as a plain UTC datetime (the close model reads the calendar from it)."""
    X = features.drop(columns=["deal_id"], errors="ignore").reset_index(drop=True)
    if "as_of" in X:
        X["as_of"] = pd.DatetimeIndex(X["as_of"]).tz_convert("UTC").tz_localize(None)
    for c in X.columns:
        if isinstance(X[c].dtype, pd.CategoricalDtype):
            X[c] = X[c].astype("object").where(X[c].notna(), None).astype("str")
    return X
