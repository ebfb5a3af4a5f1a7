"""What the revenue forecast needs from the hazard model, and the censoring-aware baselines
of a short history: revenue factors, the interval's place in the quarter, and stage/base
tables learned from every snapshot."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.hazard_baselines import HazardRateTable
from models.intervals import (
    OPEN,
    QUARTER_POSITION_COLUMN,
    WON,
    IntervalRows,
    revenue_factors,
    with_interval,
)
from tests.models.conftest import labels_frame


def test_revenue_factors_by_hand():
    # interval 0: two deals predicted at 0.5 each; the small one (10) won, the big (90) not
    rows = IntervalRows(row=np.array([0, 1, 0, 1]), k=np.array([0, 0, 1, 1]),
                        event=np.array([WON, OPEN, OPEN, WON]))  # fmt: skip
    proba = np.tile([0.5, 0.5, 0.0], (4, 1))
    got = revenue_factors(proba, rows, np.array([10.0, 90.0]), 2, prior=0.0)
    # counts: 1 win for 1.0 predicted -> 1; revenue: 10 won for 50 predicted -> 0.2 -> 0.5
    assert got[0] == pytest.approx(0.5)
    assert got[1] == pytest.approx(1.8)  # 90 won for 50 predicted
    assert revenue_factors(proba, rows, None, 2, prior=0.0) == pytest.approx([1.0, 1.0])
    shrunk = revenue_factors(proba, rows, np.array([10.0, 90.0]), 2, prior=1000.0)
    assert shrunk == pytest.approx([1.0, 1.0], abs=0.02)


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
