"""Account, owner and calendar families on one literal CRM, as of 2024-02-01."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from feature_fixtures import crm, features_at, row, ts

from features.calendar import days_to_quarter_end
from features.point_in_time import NAT, to_us

T = "2024-02-01"
K = 10.0
OVERALL = 0.5  # closed by T: R won, S lost (exactly at T)


def deal(deal_id, created, account=None, owner=None, closed=None, outcome=None, expected=None):
    return {
        "deal_id": deal_id,
        "created_at": created,
        "account_id": account,
        "owner_id": owner,
        "closed_at": closed,
        "outcome": outcome,
        "expected_close_date": expected,
    }


DEALS = [
    deal("P", "2024-01-10", "A", "U1", expected="2024-01-25"),
    deal("Q", "2024-01-20", "A", "U1", expected="2024-03-01"),
    deal("R", "2024-01-01", "A", "U2", "2024-01-15", "won"),
    deal("S", "2023-12-01", "A", "U1", "2024-02-01", "lost"),  # closes exactly at T
    deal("T", "2024-01-05", "A", "U2", "2024-03-01", "won"),  # open at T, wins later
    deal("V", "2024-01-25", "B", "U2"),
    deal("Z", "2024-01-01", "C"),
    deal("N", "2024-01-01", None, "U1"),
    deal("F", "2024-02-02", "A", "U1"),  # created after T
]
ACCOUNTS = [
    {
        "account_id": "A",
        "industry": "software",
        "employees": 100,
        "annual_revenue": 1e6,
        "country": "DE",
        "created_at": "2023-01-01",
        "rank": 3,
    },
    {
        "account_id": "B",
        "industry": "retail",
        "employees": 5,
        "created_at": "2024-02-15",
        "rank": 1,
    },  # entered the CRM after T: not known yet
    {"account_id": "C", "industry": "media", "rank": 2},  # no created_at: always known
]


@pytest.fixture(scope="module")
def f():
    return features_at(crm(DEALS, accounts=ACCOUNTS), T)


def test_firmographics_once_the_account_is_known(f):
    p = row(f, "P", T)
    assert p["account__industry"] == "software" and p["account__country"] == "DE"
    assert p["account__log_employees"] == pytest.approx(math.log(101))
    assert p["account__log_annual_revenue"] == pytest.approx(math.log1p(1e6))
    assert p["account__age_days"] == 396 and p["account__attr_rank"] == 3
    v = row(f, "V", T)
    assert np.isnan(v["account__log_employees"]) and np.isnan(v["account__attr_rank"])
    assert pd.isna(v["account__industry"])
    z = row(f, "Z", T)
    assert z["account__industry"] == "media" and math.isnan(z["account__age_days"])


def test_account_history_as_of(f):
    p = row(f, "P", T)
    assert p["account__other_open_deals"] == 2  # Q and T; S closed at T, F not yet created
    assert (p["account__n_won"], p["account__n_lost"]) == (1, 1)
    assert p["account__win_rate"] == pytest.approx((1 + K * OVERALL) / (2 + K))
    v = row(f, "V", T)
    assert (v["account__other_open_deals"], v["account__n_won"]) == (0, 0)
    assert v["account__win_rate"] == pytest.approx(OVERALL)  # a new account gets the prior
    assert math.isnan(row(f, "N", T)["account__other_open_deals"])


def test_owner_track_record_and_load(f):
    p = row(f, "P", T)
    assert p["owner__n_closed"] == 1 and p["owner__open_deals"] == 3  # P, Q, N
    assert p["owner__win_rate"] == pytest.approx((0 + K * OVERALL) / (1 + K))
    v = row(f, "V", T)
    assert v["owner__win_rate"] == pytest.approx((1 + K * OVERALL) / (1 + K))
    assert v["owner__open_deals"] == 2  # T and V
    assert math.isnan(row(f, "Z", T)["owner__win_rate"])


def test_calendar(f):
    assert row(f, "P", T)["cal__days_to_quarter_end"] == 60
    assert row(f, "P", T)["cal__days_past_expected_close"] == 7
    assert row(f, "Q", T)["cal__days_past_expected_close"] == -29
    assert math.isnan(row(f, "V", T)["cal__days_past_expected_close"])


def test_days_to_quarter_end_examples():
    times = to_us(pd.Series([ts("2024-03-31"), ts("2024-12-15T12:00"), ts("2024-04-01")]))
    assert days_to_quarter_end(times).tolist() == [1.0, 16.5, 91.0]


def test_days_to_quarter_end_as_calendar_arithmetic():
    """The NumPy month arithmetic agrees with pandas' calendar on random times (before and
    after 1970, on quarter boundaries); a missing time gives NaN."""
    rng = np.random.default_rng(0)
    us = rng.integers(-(10**15), 2 * 10**15, size=2000)
    edges = to_us(
        pd.Series(
            pd.to_datetime(
                [
                    "1969-12-31T23:59:59",
                    "2025-04-01T00:00:00",
                    "2025-12-31T23:59:59.999999",
                    "2026-01-01T00:00:00",
                ],
                utc=True,
                format="ISO8601",
            )
        )
    )
    times = np.concatenate([us, edges])
    when = pd.DatetimeIndex(times.astype("datetime64[us]")).tz_localize("UTC")
    naive = when.tz_localize(None)
    nxt = (naive.to_period("Q").asfreq("D", "end") + 1).to_timestamp().tz_localize("UTC")
    expected = (to_us(pd.Series(nxt)) - times) / 86_400_000_000
    np.testing.assert_array_equal(days_to_quarter_end(times), expected)
    assert np.isnan(days_to_quarter_end(np.array([NAT]))).all()
