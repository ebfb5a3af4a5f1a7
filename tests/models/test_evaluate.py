"""The backtest frame holds everything the metrics need; metrics recompute from it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.evaluate import (
    censoring_bias,
    close_metric_table,
    next_stage_metric_table,
    prediction_frame,
)
from models.metrics import binary_metrics
from models.train import next_stage_coverage
from tests.models.conftest import HORIZON

COLUMNS = [
    "deal_id", "as_of", "p_win", "won", "stage", "next_stage_pred", "next_stage_true",
    "p_next_stage", "p_win_base_rate", "p_win_stage_rate", "p_win_logreg",
    "p_win_fixed_horizon", "p_win_lightgbm", "drift_fallback",
    "p_next_stage_transition_matrix",
]  # fmt: skip


@pytest.fixture(scope="module")
def predictions(small_backtest, fitted_models):
    models = fitted_models
    test = small_backtest.test
    return prediction_frame(
        test.features, test.labels, models, horizon_days=HORIZON, data_end=small_backtest.data_end
    )


def test_prediction_frame_has_the_promised_columns(predictions, small_backtest):
    assert set(COLUMNS) <= set(predictions.columns)
    assert len(predictions) == len(small_backtest.test.features)
    assert not predictions.duplicated(["deal_id", "as_of"]).any()
    watched = predictions["as_of"] + pd.Timedelta(days=HORIZON) > small_backtest.data_end
    assert predictions.loc[watched.to_numpy(), "won"].isna().all()


def test_metrics_recompute_from_the_frame(predictions):
    table = close_metric_table(predictions)
    known = predictions[predictions["won"].notna()]
    again = binary_metrics(known["won"].astype(bool), known["p_win"])
    assert table["overall"]["p_win"] == again
    assert set(table["by_stage"]) == set(known["stage"])
    nxt = next_stage_metric_table(predictions)["overall"]
    rows = predictions[predictions["next_stage_true"].notna()]
    assert nxt["next_stage_model"]["log_loss"] == pytest.approx(
        -np.log(rows["p_next_stage"]).mean()
    )


def test_model_beats_the_baselines_on_generated_data(predictions):
    overall = close_metric_table(predictions)["overall"]
    assert overall["p_win"]["roc_auc"] > overall["p_win_stage_rate"]["roc_auc"]
    assert overall["p_win"]["log_loss"] < overall["p_win_base_rate"]["log_loss"]


def test_censoring_bias_and_coverage_are_shares(predictions, small_backtest):
    bias = censoring_bias(predictions)
    assert 0 <= bias["share_of_positives_lost"] <= 1
    cov = next_stage_coverage(small_backtest.train.labels)
    assert 0 <= cov["share_dropped"] < 0.5
