"""Touchpoint family on a literal CRM: windows, exact-as_of touches, time zones, recency,
people, account-level touches shared by several deals, deals with no touches."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from feature_fixtures import FUNNEL, SETTINGS, crm, features_at, row

from features.build import build_features

T = "2024-03-01"  # the as_of of every test here (midnight UTC)
DEALS = [
    {"deal_id": "D1", "created_at": "2024-01-01", "account_id": "A"},
    {"deal_id": "D2", "created_at": "2024-01-01", "account_id": "A"},
    {"deal_id": "D3", "created_at": "2024-01-01", "account_id": "B"},
    {"deal_id": "D4", "created_at": "2024-01-01"},
]


def tp(when, channel, deal=None, account=None, direction=None, contact=None, role=None):
    return {
        "deal_id": deal,
        "account_id": account,
        "occurred_at": when,
        "channel": channel,
        "direction": direction,
        "contact_id": contact,
        "contact_role": role,
    }


TOUCHES = [
    tp("2024-03-01T00:00:00Z", "email", "D1", direction="outbound", contact="c1", role="champion"),
    tp("2024-03-01T00:30:00+01:00", "email", "D1"),  # 02-29 23:30 UTC: known
    tp("2024-03-01T00:30:00-01:00", "email", "D1"),  # 01:30 UTC: after as_of
    tp("2024-02-23", "meeting", "D1", direction="outbound", contact="c2", role="decision_maker"),
    tp("2024-02-10", "demo", "D1", direction="inbound", contact="c1", role="champion"),
    tp("2024-01-15", "call", "D1", direction="inbound", contact="c3"),
    tp("2024-03-05", "meeting", "D1", contact="c9", role="finance"),  # future
    tp("2024-02-28", "web_visit", account="A"),  # account-level: counts for D1 and D2
    tp("2024-01-20", "webinar", account="A"),
    tp("2024-02-20", "fax", "D3"),  # a channel outside the contract's list
    tp("2024-03-02", "carrier_pigeon", "D3"),  # seen only after as_of: no column
]


@pytest.fixture(scope="module")
def f():
    return features_at(crm(DEALS, touches=TOUCHES), T)


def test_window_counts_include_as_of_and_exclude_the_window_start(f):
    d1 = row(f, "D1", T)
    assert (
        d1["tp__channel_email_7d"],
        d1["tp__channel_email_30d"],
        d1["tp__channel_email_90d"],
    ) == (2, 2, 2)
    assert (d1["tp__channel_meeting_7d"], d1["tp__channel_meeting_30d"]) == (
        0,
        1,
    )  # exactly 7 days back
    assert (d1["tp__channel_demo_30d"], d1["tp__channel_call_30d"], d1["tp__channel_call_90d"]) == (
        1,
        0,
        1,
    )
    assert (d1["tp__touches_7d"], d1["tp__touches_30d"], d1["tp__touches_90d"]) == (2, 4, 5)
    assert d1["tp__touches_total"] == 5


def test_recency_overall_and_per_channel(f):
    d1 = row(f, "D1", T)
    assert d1["tp__days_since_last"] == 0
    assert d1["tp__days_since_last_meeting"] == 7
    assert d1["tp__days_since_last_demo"] == 20  # 2024 is a leap year


def test_people_direction_and_trend(f):
    d1 = row(f, "D1", T)
    assert d1["tp__inbound_share"] == 0.5  # 2 of the 4 touches with a direction
    assert d1["tp__distinct_contacts"] == 3 and d1["tp__distinct_roles"] == 2
    assert d1["tp__decision_maker_engaged"] == 1
    assert d1["tp__trend"] == pytest.approx(math.log2(5 / 2))  # 4 in the last 30 d, 1 before


def test_account_level_touches_count_for_every_deal_of_the_account(f):
    for deal in ("D1", "D2"):
        r = row(f, deal, T)
        got = (r["tp__account_touches_7d"], r["tp__account_touches_30d"])
        assert got + (r["tp__account_touches_90d"],) == (1, 1, 2)
        assert r["tp__account_days_since_last"] == 2
    assert (
        row(f, "D1", T)["tp__channel_web_visit_7d"] == 0
    )  # kept apart from the deal's own touches
    d3 = row(f, "D3", T)
    assert d3["tp__account_touches_90d"] == 0 and math.isnan(d3["tp__account_days_since_last"])


def test_deal_with_no_touches(f):
    d4 = row(f, "D4", T)
    assert d4["tp__touches_total"] == 0 and d4["tp__channel_email_90d"] == 0
    assert math.isnan(d4["tp__days_since_last"]) and math.isnan(d4["tp__inbound_share"])
    assert d4["tp__distinct_contacts"] == 0 and d4["tp__decision_maker_engaged"] == 0
    assert d4["tp__trend"] == 0 and math.isnan(d4["tp__account_days_since_last"])


def test_channels_outside_the_contract_count_as_other(f):
    assert row(f, "D3", T)["tp__channel_other_30d"] == 1  # fax; the later pigeon not yet
    assert not any("fax" in c or "pigeon" in c for c in f.columns)


def test_channel_spelling_is_ignored_and_columns_never_depend_on_the_data():
    deals = [{"deal_id": "D", "created_at": "2024-01-01"}]
    touches = [
        tp("2024-02-01", "Phone", "D"),
        tp("2024-02-02", "phone", "D"),
        tp("2024-02-03", "Demo", "D"),
        tp("2024-02-04", "Web Visit", "D"),
    ]
    f = features_at(crm(deals, touches=touches), T)
    d = row(f, "D", T)
    assert d["tp__channel_other_90d"] == 2  # 'phone' is not a contract channel
    assert d["tp__channel_demo_90d"] == 1 and d["tp__channel_web_visit_90d"] == 1
    assert d["tp__days_since_last_demo"] == 27
    g = features_at(crm(DEALS, touches=TOUCHES), T)
    assert list(f.columns) == list(g.columns)


def test_as_of_given_in_another_zone_is_the_same_instant(f):
    data = crm(DEALS, touches=TOUCHES)
    paris = build_features(
        data,
        as_of_dates=pd.DatetimeIndex([pd.Timestamp("2024-03-01T01:00:00", tz="Europe/Paris")]),
        funnel=FUNNEL,
        **SETTINGS,
    )
    pd.testing.assert_frame_equal(paris, f, check_exact=True)
    assert str(paris["as_of"].dtype) == "datetime64[us, UTC]"
