"""Stage family on a literal history with a skip, a regression, a repeat and a tie."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from feature_fixtures import crm, features_at, row

K = 10.0

DEALS = [
    {"deal_id": "A", "created_at": "2024-01-01", "closed_at": "2024-02-01", "outcome": "won"},
    {"deal_id": "B", "created_at": "2024-01-10"},  # no stage rows at all
    {"deal_id": "C", "created_at": "2024-01-02"},
    {"deal_id": "W", "created_at": "2023-12-01", "closed_at": "2024-01-03", "outcome": "won"},
    {"deal_id": "L", "created_at": "2023-12-01", "closed_at": "2024-01-04", "outcome": "lost"},
    {"deal_id": "X", "created_at": "2023-12-01", "closed_at": "2024-01-25", "outcome": "lost"},
]
STAGES = [
    ("A", "lead", "2024-01-01"),
    ("A", "meeting", "2024-01-05"),  # skips qualified
    ("A", "qualified", "2024-01-08"),  # regression
    ("A", "qualified", "2024-01-09"),  # repeat: not a change
    ("A", "proposal", "2024-01-15"),  # skips meeting
    ("A", "won", "2024-02-01"),  # after the as-of times below: invisible
    ("C", "qualified", "2024-01-02"),  # same instant as its lead row: ordered by funnel
    ("C", "lead", "2024-01-02"),
    ("W", "lead", "2023-12-01"),
    ("W", "proposal", "2023-12-10"),
    ("W", "won", "2024-01-03"),
    ("L", "lead", "2023-12-01"),
    ("L", "qualified", "2023-12-05"),
    ("L", "lost", "2024-01-04"),
    ("X", "proposal", "2023-12-02"),
    ("X", "lost", "2024-01-25"),
]


@pytest.fixture(scope="module")
def f():
    return features_at(crm(DEALS, stages=STAGES), "2024-01-12", "2024-01-15", "2024-01-20")


def test_current_stage_and_time_in_it(f):
    a = row(f, "A", "2024-01-20")
    assert a["stage__current"] == "proposal" and a["stage__position"] == 3
    assert a["stage__days_in_current"] == 5
    # a stage entered exactly at as_of is already the current stage
    assert row(f, "A", "2024-01-15")["stage__days_in_current"] == 0
    # the repeated 'qualified' row does not restart the clock
    assert row(f, "A", "2024-01-12")["stage__days_in_current"] == 4


def test_changes_regressions_and_skips(f):
    a = row(f, "A", "2024-01-20")
    assert (a["stage__n_changes"], a["stage__n_regressions"], a["stage__n_skipped"]) == (3, 1, 2)
    a12 = row(f, "A", "2024-01-12")
    assert (a12["stage__n_changes"], a12["stage__n_regressions"], a12["stage__n_skipped"]) == (
        2,
        1,
        1,
    )


def test_days_in_each_earlier_stage(f):
    a = row(f, "A", "2024-01-20")
    spent = {s: a[f"stage__days_spent_{s}"] for s in ("lead", "qualified", "meeting", "proposal")}
    assert spent == {"lead": 4, "qualified": 7, "meeting": 3, "proposal": 0}


def test_same_instant_rows_follow_the_funnel_order(f):
    c = row(f, "C", "2024-01-12")
    assert c["stage__current"] == "qualified" and c["stage__n_changes"] == 1


def test_deal_without_stage_rows(f):
    b = row(f, "B", "2024-01-20")
    assert math.isnan(b["stage__position"]) and math.isnan(b["stage__days_in_current"])
    assert pd.isna(b["stage__current"])
    assert b["stage__n_changes"] == 0 and b["stage__days_spent_lead"] == 0
    assert math.isnan(b["stage__days_older_than_typical"]) and math.isnan(b["stage__win_rate"])


def test_later_outcome_rows_are_invisible(f):
    # X is lost on 01-25; on 01-20 it is still in proposal and its loss counts nowhere
    x = row(f, "X", "2024-01-20")
    assert x["stage__current"] == "proposal" and x["stage__n_changes"] == 0


def test_age_against_the_typical_entry_age(f):
    # proposal entries known on 01-20 were made at ages 1 (X), 9 (W), 14 (A): median 9
    assert row(f, "A", "2024-01-20")["stage__days_older_than_typical"] == 19 - 9
    assert row(f, "X", "2024-01-20")["stage__days_older_than_typical"] == 50 - 9
    # qualified entries: C at 0, L at 4, A at 7 -> median 4; C is 18 days old
    assert row(f, "C", "2024-01-20")["stage__days_older_than_typical"] == 18 - 4


def test_stage_win_rate_counts_deals_closed_by_as_of(f):
    overall = 0.5  # W won, L lost; X closes after 01-20
    assert row(f, "A", "2024-01-20")["stage__win_rate"] == pytest.approx(
        (1 + K * overall) / (1 + K)
    )
    assert row(f, "C", "2024-01-20")["stage__win_rate"] == pytest.approx(
        (0 + K * overall) / (1 + K)
    )
