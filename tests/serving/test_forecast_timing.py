"""Forecast timing: the calendar clock (wins bunch at quarter ends) and new-deal revenue
that follows the CRM's growth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from serving.calendar_clock import (
    WEEKS,
    calendar_clock_at,
    clock,
    intensity_profile,
    quarter_week,
    warp,
)
from serving.forecast import curve_probabilities, month_periods, new_deal_history


def ts(value: str) -> pd.Timestamp:
    return pd.Timestamp(value, tz="UTC")


def won_deals(closes: list[str], amount: float = 100.0, created: str = "2024-01-01"):
    n = len(closes)
    return pd.DataFrame(
        {
            "deal_id": pd.array([f"D{i}" for i in range(n)], dtype="str"),
            "created_at": pd.to_datetime([created] * n, utc=True),
            "closed_at": pd.to_datetime(closes, utc=True),
            "outcome": pd.array(["won"] * n, dtype="str"),
            "amount": np.full(n, amount),
        }
    )


def test_quarter_week_counts_whole_weeks_to_the_next_quarter():
    days = ["2025-03-31", "2025-03-24", "2025-01-01", "2025-07-01"]
    got = quarter_week(pd.DatetimeIndex([ts(d) for d in days]))
    assert got.tolist() == [0, 1, 12, WEEKS - 1]  # Q1 has 90 days, Q3 92


def test_profile_is_flat_without_wins_and_peaks_where_wins_bunch():
    empty = won_deals([]).iloc[:0]
    assert intensity_profile(empty, as_of=ts("2025-06-01"), won_label="won", prior_days=30) == (
        pytest.approx(np.ones(WEEKS))
    )
    # every win in the last week of a quarter, over two years
    closes = [f"{y}-{m:02d}-{d}" for y in (2024, 2025) for m in (3, 6, 9, 12) for d in (26, 28)]
    deals = won_deals(closes)
    profile = intensity_profile(deals, as_of=ts("2026-01-01"), won_label="won", prior_days=30)
    assert profile[0] > 3 and profile[1:].max() < 1
    # wins after as_of are not known yet: they change nothing
    later = pd.concat([deals, won_deals(["2026-02-10"] * 50)], ignore_index=True)
    assert intensity_profile(later, as_of=ts("2026-01-01"), won_label="won", prior_days=30) == (
        pytest.approx(profile)
    )


def test_flat_clock_is_linear_time():
    w = clock(ts("2025-01-01"), np.ones(WEEKS), 100)
    assert warp(np.array([0.0, 10.5, 100.0, 150.0]), w) == pytest.approx([0, 10.5, 100, 150])


def test_curve_mass_inside_an_interval_follows_the_clock():
    # the interval (28, 56] after 2025-03-01 holds the quarter end (day 30) and April
    curves = pd.DataFrame({"won_28d": [0.2], "won_56d": [0.5]})
    march = np.array([[0.0, 31.0]])
    even = curve_probabilities(curves, march)[0, 0]
    assert even == pytest.approx(0.2 + 0.3 * 3 / 28)
    profile = np.ones(WEEKS)
    profile[0] = 6.0  # the last week of a quarter has six times the wins
    w = clock(ts("2025-03-01"), profile, 366)
    bunched = curve_probabilities(curves, march, w)[0, 0]
    assert bunched > even + 0.05
    whole = curve_probabilities(curves, np.array([[0.0, 56.0]]), w)[0, 0]
    assert whole == pytest.approx(0.5)  # the model's P(won by day 56) is untouched


def test_clock_of_a_crm_uses_only_wins_before_as_of():
    deals = won_deals(["2024-03-28", "2024-06-27", "2024-09-27"])
    w = calendar_clock_at(deals, as_of=ts("2024-10-01"), won_label="won", prior_days=30)
    assert len(w) == 368 and np.all(np.diff(w) > 0)


def test_new_deal_revenue_follows_the_number_of_deals_created():
    # one 100 win a month from deals created that month; lately, many more deals created
    rows = []
    for j, month in enumerate(pd.date_range("2024-01-15", "2025-05-15", freq="MS")):
        created = month + pd.Timedelta(days=3)
        rows.append((f"W{j}", created, created + pd.Timedelta(days=20), "won", 100.0))
    for i in range(20):
        rows.append((f"N{i}", ts("2025-05-20"), None, None, 0.0))
    ids, created, closed, outcome, amount = zip(*rows, strict=True)
    deals = pd.DataFrame(
        {
            "deal_id": pd.array(ids, dtype="str"),
            "created_at": pd.to_datetime(list(created), utc=True),
            "closed_at": pd.to_datetime(list(closed), utc=True),
            "outcome": pd.array(outcome, dtype="str"),
            "amount": np.asarray(amount, float),
        }
    )
    as_of = ts("2025-06-01")
    plain = new_deal_history(
        deals, month_periods(as_of, 1), as_of=as_of, won_label="won", origins=1
    ).iloc[0]
    assert plain["new_origins"] == 1
    # origin 2025-05-01 won 100 from 3 deals created in its 91 days; 23 were created in
    # the 91 days before as_of: scaled up, bounded at twice
    assert plain["new_mean"] == pytest.approx(200.0)
    steady = deals[~deals["deal_id"].str.startswith("N")]
    same = new_deal_history(
        steady, month_periods(as_of, 1), as_of=as_of, won_label="won", origins=1
    ).iloc[0]
    assert same["new_mean"] == pytest.approx(100.0)  # 3 deals then, 3 now
