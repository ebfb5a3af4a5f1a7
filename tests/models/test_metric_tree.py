"""Metric trees as strict JSON and flat names; the model set built from params.yaml."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from models.metric_tree import clean_json, flatten, numeric_metrics
from models.model_set import model_set
from models.served_frame import model_frame

ROOT = Path(__file__).resolve().parents[2]


def test_clean_json_flatten_and_numeric_metrics():
    tree = {"a": {"b": np.float64(0.5), "c (x)": math.nan, "d": [1, 2]}, "e": True, "f": "t"}
    assert clean_json(tree) == {"a": {"b": 0.5, "c (x)": None, "d": [1, 2]}, "e": True, "f": "t"}
    assert flatten(tree)["a.d"] == "[1, 2]"
    assert numeric_metrics(tree) == {"a.b": 0.5}


def test_the_model_set_takes_every_train_setting_of_params():
    from pipelines.params import load_params

    train = load_params(ROOT / "params.yaml").train
    made = model_set(states=("a", "b"), seed=3, **train.model_dump(exclude={"explain_top_n"}))
    assert set(made) == {"close", "fixed_horizon", "stage_rate", "logreg", "next_stage"}
    assert made["close"].horizon_days == train.horizon_days


def test_model_frame_drops_the_deal_id_and_makes_categories_text():
    import pandas as pd

    frame = pd.DataFrame({
        "deal_id": ["D1", "D2"], "as_of": pd.to_datetime(["2025-01-01"] * 2, utc=True),
        "stage": pd.Categorical(["a", None]),
    })  # fmt: skip
    X = model_frame(frame)
    assert list(X.columns) == ["as_of", "stage"] and X["as_of"].dt.tz is None
    assert X["stage"].iloc[0] == "a" and X["stage"].isna().iloc[1]
