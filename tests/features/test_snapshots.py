"""Which deals are open at which as-of times: the spine of every feature table."""

from __future__ import annotations

import pandas as pd
from feature_fixtures import crm, ts

from features.snapshots import open_deals_at, snapshot_dates


def test_weekly_snapshots_are_utc_midnight_mondays_inclusive():
    dates = snapshot_dates(ts("2024-01-03T10:00"), ts("2024-01-22"), "W-MON")
    assert list(dates) == [ts("2024-01-08"), ts("2024-01-15"), ts("2024-01-22")]
    assert str(dates.dtype) == "datetime64[us, UTC]"


def test_snapshot_dates_read_naive_inputs_as_utc():
    naive = snapshot_dates(pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-03"), "D")
    assert naive[0] == ts("2024-01-01") and len(naive) == 3


def _open(deals, *times):
    frame = crm(deals).deals
    return open_deals_at(frame, pd.DatetimeIndex([ts(t) for t in times]))


def test_open_means_created_at_or_before_and_not_closed_by_then():
    deals = [
        {"deal_id": "created_at_t", "created_at": "2024-01-10"},
        {
            "deal_id": "closed_at_t",
            "created_at": "2024-01-01",
            "closed_at": "2024-01-10",
            "outcome": "lost",
        },
        {
            "deal_id": "closes_later",
            "created_at": "2024-01-01",
            "closed_at": "2024-01-11",
            "outcome": "won",
        },
        {"deal_id": "created_later", "created_at": "2024-01-10T00:00:01"},
    ]
    got = _open(deals, "2024-01-10")
    assert got["deal_id"].tolist() == ["closes_later", "created_at_t"]


def test_deal_created_and_closed_the_same_day():
    deals = [
        {
            "deal_id": "D",
            "created_at": "2024-01-10T09:00",
            "closed_at": "2024-01-10T17:00",
            "outcome": "won",
        }
    ]
    assert _open(deals, "2024-01-10", "2024-01-11").empty
    assert _open(deals, "2024-01-10T12:00")["deal_id"].tolist() == ["D"]


def test_rows_sorted_by_as_of_then_deal_id_whatever_the_input_order():
    deals = [
        {"deal_id": "b", "created_at": "2024-01-01"},
        {"deal_id": "a", "created_at": "2024-01-05"},
        {"deal_id": "c", "created_at": "2024-01-01", "closed_at": "2024-01-08", "outcome": "lost"},
    ]
    got = _open(deals, "2024-01-09", "2024-01-02", "2024-01-06")
    assert list(zip(got["as_of"].dt.day, got["deal_id"], strict=True)) == [
        (2, "b"),
        (2, "c"),
        (6, "a"),
        (6, "b"),
        (6, "c"),
        (9, "a"),
        (9, "b"),
    ]
    assert str(got["as_of"].dtype) == "datetime64[us, UTC]"
    assert str(got["deal_id"].dtype) == "str"
