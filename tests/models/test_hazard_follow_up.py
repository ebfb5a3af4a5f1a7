"""Short follow-up: what the hazard model may learn from, and what it serves for intervals
no training row reached (#10, late-wins: a backtest 10 days after a trimmed start)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm.synthetic import generate_crm
from features.build import build_labels
from features.history_start import delayed_entry, history_start
from features.snapshots import snapshot_dates
from models.intervals import (
    LOST,
    OPEN,
    WON,
    cumulative_incidence,
    extend_unobserved,
    interval_edges,
    interval_rows,
    observed_intervals,
)
from tests.models.conftest import labels_frame as labels
from tests.shared import FUNNEL

EDGES = (7, 14, 28, 56, 91, 135, 180, 270, 365)


def _rows(frame: pd.DataFrame, edges: np.ndarray) -> list[tuple[int, int, int]]:
    got = interval_rows(frame, edges)
    return sorted(zip(got.row.tolist(), got.k.tolist(), got.event.tolist(), strict=True))


def test_an_interval_the_data_stopped_watching_is_censored_whole():
    edges = interval_edges((7, 14, 28), 14)
    frame = labels(["won", None], [20, np.nan], [21, 21])  # won on day 20 / open; 21 watched
    # (14, 28] was watched up to day 21 only: the win inside it is known, the deals still
    # open on day 21 are not, so keeping the win alone would make the hazard 100 %
    assert _rows(frame, edges) == [(0, 0, OPEN), (0, 1, OPEN), (1, 0, OPEN), (1, 1, OPEN)]
    watched = labels(["won", "lost"], [20, 3], [28, 28])
    assert _rows(watched, edges) == [(0, 0, OPEN), (0, 1, OPEN), (0, 2, WON), (1, 0, LOST)]


def test_a_delayed_entry_counts_intervals_from_the_entry_on():
    edges = interval_edges((7, 14, 28, 30), 30)
    frame = labels([None, "won"], [np.nan, 29], [35, 35]).assign(entry_days=[10.0, 25.0])
    # open deal: (0, 7] and (7, 14] began before its entry; won on day 29: only (28, 30]
    assert _rows(frame, edges) == [(0, 2, OPEN), (0, 3, OPEN), (1, 3, WON)]


def test_an_unmeasured_interval_gets_the_daily_rates_before_it():
    edges = np.array([7.0, 21.0, 28.0, 42.0])  # widths 7, 14, 7, 14
    h = np.array([[[0.9, 0.06, 0.04], [0.5, 0.5, 0.0], [0.8, 0.1, 0.1], [0.5, 0.0, 0.5]]])
    out = extend_unobserved(h, edges, np.array([True, False, True, False]))
    # (7, 21] is twice as long as the measured first week: still open 0.9 ** 2, the rest
    # split 60/40 like the first week's closes; (28, 42] likewise from (21, 28]
    assert np.allclose(out[0, 1], [0.81, 0.19 * 0.6, 0.19 * 0.4])
    assert np.allclose(out[0, 3], [0.64, 0.18, 0.18])
    assert np.array_equal(out[0, [0, 2]], h[0, [0, 2]])
    assert extend_unobserved(h, edges, None) is h  # a model pickled before: unchanged
    assert np.allclose(out.sum(axis=2), 1)
    won, lost = cumulative_incidence(out)
    assert won[0, -1] + lost[0, -1] <= 1


@pytest.fixture(scope="module")
def late_crm():
    as_of = pd.Timestamp("2026-06-30", tz="UTC")
    return generate_crm(
        n_deals=1500, seed=5, start=pd.Timestamp("2024-06-01", tz="UTC"), as_of=as_of,
        funnel=FUNNEL, messy=False, scenarios=("late-wins",),
    ).data  # fmt: skip


def test_a_cutoff_days_after_a_trimmed_start_still_measures_later_intervals(late_crm):
    """The late-wins backtest: history trimmed to a month after logging began, cutoff
    10 days later. Without the earlier snapshots only each snapshot's first week is
    measured, and P(won within 30 d) repeats it; with them (entering at the start) the
    weeks after it are measured too."""
    history = history_start(late_crm.deals, start=None, after_late_wins=True)
    cutoff = history.start + pd.Timedelta(days=10)
    dates = snapshot_dates(history.start, cutoff, "W-MON")
    edges = interval_edges(EDGES, 30)

    def measured(as_of_dates) -> np.ndarray:
        frame = build_labels(
            late_crm, as_of_dates=as_of_dates, funnel=FUNNEL, horizons_days=(30,),
            data_end=cutoff,
        )  # fmt: skip
        frame = delayed_entry(frame, start=history.start)
        return observed_intervals(interval_rows(frame, edges), len(edges))

    within = edges <= 30
    assert measured(dates)[within].tolist() == [True, False, False, False]
    late = measured(history.training_dates(dates, freq="W-MON"))
    assert late[within].tolist() == [True, True, False, True]  # (14, 28] is extended
