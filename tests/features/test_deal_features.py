"""Deal family on a literal CRM: age, amount, categories, attributes, source win rate."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from feature_fixtures import FUNNEL, crm, features_at, row

from crm.schemas import Funnel

K = 10.0  # prior_strength in the test settings

DEALS = [
    # closed history: web 1 won / 1 lost, event 1 won (closed on 01-05, before the others)
    {
        "deal_id": "S1",
        "created_at": "2024-01-01",
        "source": "web",
        "closed_at": "2024-01-10",
        "outcome": "won",
    },
    {
        "deal_id": "S2",
        "created_at": "2024-01-02",
        "source": "web",
        "closed_at": "2024-01-20",
        "outcome": "lost",
    },
    {
        "deal_id": "S4",
        "created_at": "2024-01-05T08:00",
        "source": "event",
        "closed_at": "2024-01-05T18:00",
        "outcome": "won",
    },  # created and closed the same day
    {
        "deal_id": "S3",
        "created_at": "2024-01-03",
        "source": "event",
        "closed_at": "2024-02-01",
        "outcome": "won",
    },  # still open on 01-25: must not count
    {
        "deal_id": "D",
        "created_at": "2024-01-01T12:00",
        "source": "web",
        "amount": 999.0,
        "owner_id": "U1",
        "product": "core",
        "score": 7.5,
        "tier": "gold",
    },
]


@pytest.fixture
def data():
    deals = pd.DataFrame(DEALS)
    base = crm(DEALS).deals
    base["score"] = deals["score"].astype("float64")
    base["tier"] = pd.Series(deals["tier"], dtype="str").astype("category")
    return crm(DEALS).with_table("deals", base)


def test_age_amount_and_categories(data):
    f = features_at(data, "2024-01-25")
    d = row(f, "D", "2024-01-25")
    assert d["deal__age_days"] == 23.5
    assert d["deal__log_amount"] == pytest.approx(math.log(1000.0))
    assert d["deal__source"] == "web" and d["deal__owner_id"] == "U1"
    assert d["deal__product"] == "core"
    # categories are the values present in the table, sorted; S3 is the only other row
    assert list(f["deal__source"].cat.categories) == ["event", "web"]
    assert math.isnan(row(f, "S3", "2024-01-25")["deal__log_amount"])


def test_custom_attributes_typed_and_excludable(data):
    f = features_at(data, "2024-01-25")
    assert row(f, "D", "2024-01-25")["deal__attr_score"] == 7.5
    assert f["deal__attr_tier"].dtype == "category"
    hidden = Funnel(FUNNEL.stages, "won", "lost", exclude_attributes=("score",))
    g = features_at(data, "2024-01-25", funnel=hidden)
    assert "deal__attr_score" not in g and "deal__attr_tier" in g


def test_source_win_rate_uses_only_deals_closed_by_as_of(data):
    f = features_at(data, "2024-01-20", "2024-01-25")
    # at 01-20 (S2 closes exactly then, so it counts): overall 2 won of 3 closed
    overall = 2 / 3
    web = (1 + K * overall) / (2 + K)
    assert row(f, "D", "2024-01-20")["deal__source_win_rate"] == pytest.approx(web)
    event = (1 + K * overall) / (1 + K)
    assert row(f, "S3", "2024-01-25")["deal__source_win_rate"] == pytest.approx(event)


def test_no_closed_deal_yet_means_no_rate(data):
    f = features_at(data, "2024-01-04")
    assert f["deal__source_win_rate"].isna().all()
