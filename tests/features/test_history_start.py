"""Where training history starts: after the first month of late-logged wins, unless the
user said otherwise."""

from __future__ import annotations

import pandas as pd
import pytest

from crm.synthetic import generate_crm
from crm.synthetic.scenarios import LOG_DAYS
from features.history_start import history_start
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
    start, note = history_start(late_deals, start=None, after_late_wins=True)
    logging_began = (AS_OF - pd.Timedelta(days=LOG_DAYS)).normalize()
    # the back-fill lands in the first 30 days of logging: the start is after them
    assert start >= logging_began + pd.Timedelta(days=30)
    assert start < AS_OF - pd.Timedelta(days=30)
    assert "features.start" in note and str(start.date()) in note


def test_explicit_start_and_the_switch_win(late_deals):
    first = late_deals["created_at"].min()
    assert history_start(late_deals, start=None, after_late_wins=False) == (first, None)
    mine = pd.Timestamp("2025-01-01", tz="UTC")
    assert history_start(late_deals, start=mine, after_late_wins=True) == (mine, None)


def test_a_crm_that_logged_wins_all_along_starts_at_its_first_deal():
    crm = generate_crm(
        n_deals=1500, seed=5, start=pd.Timestamp("2024-06-01", tz="UTC"), as_of=AS_OF,
        funnel=FUNNEL, messy=False,
    )  # fmt: skip
    deals = crm.data.deals
    assert history_start(deals, start=None, after_late_wins=True) == (
        deals["created_at"].min(),
        None,
    )
