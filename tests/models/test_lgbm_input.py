"""booster_array: LightGBM predicts the same on the array as on the DataFrame it came from."""

from __future__ import annotations

import lightgbm
import numpy as np
import pandas as pd
import pytest

import models.hazard
from models.lgbm_input import booster_array
from tests.models.test_hazard import fitted_hazard  # noqa: F401 - a fixture


@pytest.fixture(scope="module")
def booster() -> lightgbm.Booster:
    rng = np.random.default_rng(0)
    n = 400
    X = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": pd.Categorical(rng.choice(["x", "y", "z"], size=n)),
            "c": np.where(rng.random(n) < 0.2, np.nan, rng.random(n)),
            "d": pd.Categorical(rng.choice(["p", "q"], size=n)),
        }
    )
    y = (X["a"] + (X["b"] == "y") + rng.normal(size=n) > 0.5).astype(int)
    params = {"objective": "binary", "verbose": -1, "num_threads": 1, "min_data_in_leaf": 5}
    return lightgbm.train(params, lightgbm.Dataset(X, y), num_boost_round=20)


def test_same_predictions_as_the_frame(booster):
    later = pd.DataFrame(
        {
            "a": [0.3, -1.0, np.nan, 2.0],
            # other category order, an unseen value and a missing one
            "b": pd.Categorical(["z", "new", None, "x"], categories=["z", "new", "x"]),
            "c": [0.1, np.nan, 0.5, 0.9],
            "d": pd.Categorical(["q", "p", "p", None]),
        }
    )
    array = booster_array(later, booster.pandas_categorical)
    assert isinstance(array, np.ndarray) and array.dtype == np.float64
    for kwargs in ({"raw_score": True}, {"pred_contrib": True}):
        np.testing.assert_array_equal(
            booster.predict(array, **kwargs), booster.predict(later, **kwargs)
        )


def test_mismatched_categoricals_left_to_lightgbm(booster):
    frame = pd.DataFrame({"a": [1.0], "b": ["x"], "c": [0.1], "d": ["p"]})
    assert booster_array(frame, booster.pandas_categorical) is frame


def test_hazard_model_predicts_as_through_the_frame(fitted_hazard, small_backtest, monkeypatch):  # noqa: F811
    X = small_backtest.test.features.iloc[:40]
    fast_hazards = fitted_hazard.predict_hazards(X, part="model")
    fast_contrib = fitted_hazard.contributions(X)[0]
    monkeypatch.setattr(models.hazard, "booster_array", lambda Z, _: Z)
    np.testing.assert_array_equal(fast_hazards, fitted_hazard.predict_hazards(X, part="model"))
    np.testing.assert_array_equal(fast_contrib, fitted_hazard.contributions(X)[0])
