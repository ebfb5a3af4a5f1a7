"""The interval's place in the quarter (what the forecast's timing needs from the hazard
model), and the censoring-aware stage and base tables of a short history."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.hazard_baselines import HazardRateTable
from models.intervals import (
    QUARTER_POSITION_COLUMN,
    with_interval,
)
from tests.models.conftest import labels_frame


def test_interval_rows_know_their_place_in_the_quarter():
    matrix = pd.DataFrame({"x": [1.0, 2.0]})
    as_of = pd.Series(pd.to_datetime(["2025-03-01", "2025-04-01"], utc=True))
    edges = np.array([7.0, 28.0, 56.0])
    out = with_interval(matrix, np.array([0, 0, 1]), np.array([0, 2, 1]), edges, as_of)
    # 2025-03-01 -> 31 days to 04-01; +28 days (2025-03-29) -> 3; 2025-04-08 -> 84
    assert out[QUARTER_POSITION_COLUMN].tolist() == [31.0, 3.0, 84.0]


def test_censoring_aware_stage_table_counts_open_deals_as_open_not_lost():
    # 'late' wins half its deals within 7 days; 'early' never wins; only 10 days watched
    n = 40
    stage = np.array(["early"] * n + ["late"] * n, dtype=object)
    X = pd.DataFrame({"stage__current": stage})
    won = np.r_[np.zeros(n, bool), np.arange(n) % 2 == 0]
    lost = np.r_[np.arange(n) % 2 == 0, np.zeros(n, bool)]
    y = labels_frame(
        np.where(won, "won", np.where(lost, "lost", None)),
        np.where(won | lost, 3.0, np.nan),
        np.full(2 * n, 10.0),
    )
    table = HazardRateTable(horizon_days=7, edges_days=(7, 14), prior_strength=1.0,
                            by_stage=True).fit(X, y)  # fmt: skip
    p = table.predict_proba(X)[:, 1]
    assert p[n:].mean() == pytest.approx(0.5, abs=0.03) and p[:n].max() < 0.05
    pooled = HazardRateTable(horizon_days=7, edges_days=(7, 14), prior_strength=1.0,
                             by_stage=False).fit(X, y)  # fmt: skip
    assert pooled.predict_proba(X)[:, 1] == pytest.approx(np.full(2 * n, 0.25), abs=0.02)
