"""Where training history starts: after the first month of late-logged wins, unless the
user said otherwise; snapshots of that month enter late."""

from __future__ import annotations

import pandas as pd
import pytest

from crm.synthetic import generate_crm
from crm.synthetic.scenarios import LOG_DAYS
from features.history_start import HistoryStart, delayed_entry, history_start
from tests.shared import FUNNEL

AS_OF = pd.Timestamp("2026-06-30", tz="UTC")


@pytest.fixture(scope="module")
def late_deals() -> pd.DataFrame:
    crm = generate_crm(
        n_deals=1500, seed=5, start=pd.Timestamp("2024-06-01", tz="UTC"), as_of=AS_OF,
        funnel=FUNNEL, messy=False, scenarios=("late-wins",),
    )  # fmt: skip
    return crm.data.deals


def test_late_logged_wins_move_the_start_past_the_back_fill(late_deals):
    history = history_start(late_deals, start=None, after_late_wins=True)
    start, note = history.start, history.note
    logging_began = (AS_OF - pd.Timedelta(days=LOG_DAYS)).normalize()
    # the back-fill lands in the first 30 days of logging: the start is after them
    assert start >= logging_began + pd.Timedelta(days=30)
    assert start < AS_OF - pd.Timedelta(days=30)
    assert "features.start" in note and str(start.date()) in note
    # snapshots from the month logging began enter late
    assert logging_began <= history.entry_from + pd.Timedelta(days=1) < start


def test_explicit_start_and_the_switch_win(late_deals):
    first = late_deals["created_at"].min()
    assert history_start(late_deals, start=None, after_late_wins=False) == HistoryStart(first)
    mine = pd.Timestamp("2025-01-01", tz="UTC")
    assert history_start(late_deals, start=mine, after_late_wins=True) == HistoryStart(mine)


def test_a_crm_that_logged_wins_all_along_starts_at_its_first_deal():
    crm = generate_crm(
        n_deals=1500, seed=5, start=pd.Timestamp("2024-06-01", tz="UTC"), as_of=AS_OF,
        funnel=FUNNEL, messy=False,
    )  # fmt: skip
    deals = crm.data.deals
    assert history_start(deals, start=None, after_late_wins=True) == HistoryStart(
        deals["created_at"].min()
    )


def test_delayed_entry_snapshots_count_from_the_start_only():
    start = pd.Timestamp("2026-05-01", tz="UTC")
    history = HistoryStart(start, "late wins", entry_from=pd.Timestamp("2026-04-01", tz="UTC"))
    dates = pd.date_range("2026-05-04", periods=2, freq="W-MON", tz="UTC")
    got = history.training_dates(dates, freq="W-MON")
    assert [str(d.date()) for d in got] == [
        "2026-04-06", "2026-04-13", "2026-04-20", "2026-04-27", "2026-05-04", "2026-05-11",
    ]  # fmt: skip
    assert HistoryStart(start).training_dates(dates, freq="W-MON").equals(dates)
    labels = pd.DataFrame(
        {
            "as_of": pd.DatetimeIndex(["2026-04-20", "2026-05-04"], tz="UTC"),
            "outcome": ["won", None],
            "days_observed": [21.0, 7.0],
            "next_stage": ["won", None],
            "won_within_30d": pd.array([True, pd.NA], dtype="boolean"),
        }
    )
    out = delayed_entry(labels, start=start)
    assert out["entry_days"].tolist() == [11.0, 0.0]
    # a label spanning the days before the start is blanked; the outcome stays
    assert out["won_within_30d"].isna().all() and out["next_stage"].isna().all()
    assert out["outcome"].equals(labels["outcome"])
    later = labels.iloc[[1]]
    assert delayed_entry(later, start=start) is later
