"""Drivers: contributions turned into short phrases a rep understands, family by family."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.explain import catalogue_meanings, phrase, top_drivers

STAGES = ("lead", "qualified", "meeting", "proposal", "negotiation")
ROW = pd.Series(
    {"stage__current": "proposal", "deal__source": "referral"}
    | {f"stage__days_spent_{s}": 0.0 for s in STAGES}
)


def test_template_phrases():
    assert phrase("tp__days_since_last_meeting", 41.0, ROW, {}) == "no meeting in 41 days"
    assert phrase("tp__decision_maker_engaged", 1.0, ROW, {}) == "decision maker engaged"
    older = phrase("stage__days_older_than_typical", 21.0, ROW, {})
    assert older == "deal 3 weeks older than deals usually are on entering proposal"
    assert phrase("tp__channel_demo_30d", 0.0, ROW, {}) == "no demo in the last 30 days"
    assert phrase("owner__win_rate", 0.42, ROW, {}) == "rep wins 42 % of closed deals"


@pytest.mark.parametrize(
    ("feature", "value", "expected"),
    [
        # deal
        ("deal__log_amount", float(np.log1p(314_000.0)), "deal size 314,000"),
        ("deal__log_amount", None, "no deal amount"),
        ("deal__age_days", 41.0, "deal open for 41 days"),
        ("deal__age_days", 180.4, "deal open for 6 months"),
        ("deal__source", "referral", "source: referral"),
        ("deal__product", "platform", "product: platform"),
        ("deal__source_win_rate", 0.4, "source referral wins 40 %"),
        ("deal__attr_segment", "enterprise", "segment: enterprise"),
        ("deal__attr_legacy_score", 95.0, "legacy score: 95"),
        ("deal__attr_legacy_score", 0.4567, "legacy score: 0.457"),
        ("deal__attr_segment", None, "no segment"),
        ("deal__attr_competitor_present", 1.0, "competitor involved"),
        # stage
        ("stage__current", "proposal", "at stage proposal"),
        ("stage__position", 3.0, "at stage proposal (4 of 5)"),
        ("stage__days_in_current", 12.0, "12 days in proposal"),
        ("stage__n_changes", 3.0, "3 stage moves"),
        ("stage__n_changes", 0.0, "no stage move yet"),
        ("stage__n_regressions", 0.0, "never moved back a stage"),
        ("stage__n_regressions", 2.0, "moved back a stage 2 times"),
        ("stage__n_skipped", 1.0, "skipped 1 stage"),
        ("stage__days_spent_meeting", 0.0, "no earlier stay in meeting"),
        ("stage__days_spent_meeting", 9.0, "spent 9 days in meeting before"),
        (
            "stage__days_older_than_typical",
            10.0,
            "deal 10 days older than deals usually are on entering proposal",
        ),
        (
            "stage__days_older_than_typical",
            -30.0,
            "deal 4 weeks younger than deals usually are on entering proposal",
        ),
        (
            "stage__days_older_than_typical",
            122.0,
            "deal 4 months older than deals usually are on entering proposal",
        ),
        ("stage__win_rate", 0.35, "deals in proposal win 35 %"),
        # touchpoints
        ("tp__channel_meeting_30d", 4.0, "4 meetings in the last 30 days"),
        ("tp__channel_meeting_7d", 1.0, "1 meeting in the last 7 days"),
        ("tp__channel_demo_90d", 0.0, "no demo in the last 90 days"),
        ("tp__channel_social_30d", 2.0, "2 social touches in the last 30 days"),
        ("tp__channel_web_visit_7d", 0.0, "no web visit in the last 7 days"),
        ("tp__touches_30d", 0.0, "no touch in the last 30 days"),
        ("tp__touches_7d", 8.0, "8 touches in the last 7 days"),
        ("tp__touches_total", 162.0, "162 touches so far"),
        ("tp__days_since_last", 41.0, "no touch in 41 days"),
        ("tp__days_since_last", 2.2, "last touch 2 days ago"),
        ("tp__days_since_last", 56.9, "no touch in 56 days"),  # whole days, as in the export
        ("stage__days_in_current", 56.9, "56 days in proposal"),
        ("tp__days_since_last", None, "no touch yet"),
        ("tp__days_since_last_demo", None, "no demo yet"),
        ("tp__inbound_share", 0.8, "buyer started 80 % of touches"),
        ("tp__distinct_contacts", 2.0, "2 buyer contacts involved"),
        ("tp__distinct_roles", 1.0, "1 buyer role involved"),
        ("tp__decision_maker_engaged", 0.0, "no decision maker engaged yet"),
        ("tp__trend", 1.0, "activity picking up"),
        ("tp__trend", -1.0, "activity slowing down"),
        ("tp__account_touches_90d", 1.0, "1 account touch in the last 90 days"),
        ("tp__account_days_since_last", 66.0, "no account touch in 2 months"),
        # account
        ("account__industry", "finance", "industry: finance"),
        ("account__country", "SE", "country: SE"),
        ("account__log_employees", float(np.log1p(250.0)), "250 employees"),
        ("account__age_days", 809.0, "account known for 2.2 years"),
        ("account__other_open_deals", 0.0, "no other open deal with the account"),
        ("account__n_won", 2.0, "2 deals won with the account"),
        ("account__n_lost", 1.0, "1 deal lost with the account"),
        ("account__win_rate", 0.5, "account wins 50 % of closed deals"),
        # owner
        ("owner__win_rate", 0.31, "rep wins 31 % of closed deals"),
        ("owner__n_closed", 141.0, "rep has closed 141 deals"),
        ("owner__open_deals", 12.0, "rep has 12 open deals"),
        # calendar
        ("cal__days_to_quarter_end", 30.0, None),  # true for every deal: not a reason
        ("cal__days_to_quarter_end", 1.0, None),
        ("cal__days_past_expected_close", 12.0, "12 days past the expected close date"),
        ("cal__days_past_expected_close", -5.0, "expected close in 5 days"),
        ("cal__days_past_expected_close", None, "no expected close date"),
    ],
)
def test_every_family_reads_naturally(feature, value, expected):
    assert phrase(feature, value, ROW, {}) == expected


def test_phrases_without_a_direction_are_none():
    for days in (0.0, 3.0, -6.0):
        assert phrase("stage__days_older_than_typical", days, ROW, {}) is None
    assert phrase("tp__trend", 0.0, ROW, {}) is None


def test_fallback_uses_the_catalogue_meaning_rounded():
    meanings = {"made__thing": "Some made-up measure (for tests)."}
    assert phrase("made__thing", 1.0, ROW, meanings) == "Some made-up measure: 1"
    assert phrase("made__thing", 0.123456, ROW, meanings) == "Some made-up measure: 0.123"
    assert phrase("made__thing", 12345.6, ROW, meanings) == "Some made-up measure: 12,346"
    assert phrase("made__up", 2.0, ROW, {}) == "up: 2"
    assert phrase("made__thing", None, ROW, meanings) == "Some made-up measure: unknown"
    assert phrase("other__log_widgets", float(np.log1p(42.0)), ROW, {}) == "widgets 42"


def test_catalogued_names_never_fall_back_to_their_meaning():
    columns = ["stage__position", "tp__inbound_share", "stage__n_skipped", "owner__open_deals"]
    meanings = catalogue_meanings(columns)
    for c in columns:
        text = phrase(c, 1.0, ROW, meanings)
        assert meanings[c].split(" ")[0] not in text and ":" not in text


class _Trees:
    """A stand-in for LGBMClassifier with fixed contributions (last column: bias)."""

    def __init__(self, contrib):
        self.contrib = np.asarray(contrib, dtype=float)

    def predict(self, matrix, pred_contrib):
        assert pred_contrib
        return self.contrib


def test_neutral_drivers_are_skipped_for_the_next_one():
    matrix = pd.DataFrame(
        {
            "stage__days_older_than_typical": [1.0],  # ~ usual: says nothing
            "stage__current": ["lead"],
            "tp__days_since_last_meeting": [41.0],
            "owner__win_rate": [0.31],
            "tp__trend": [0.0],  # steady: says nothing
            "deal__log_amount": [float(np.log1p(314_000.0))],
        }
    )
    trees = _Trees([[0.9, 0.5, 0.3, 0.1, -0.8, -0.2, 0.0]])
    drivers = top_drivers(trees, matrix, top_n=2, meanings={})
    ups = drivers[drivers["direction"] == "up"]
    downs = drivers[drivers["direction"] == "down"]
    assert ups["phrase"].tolist() == ["at stage lead", "no meeting in 41 days"]
    assert ups["rank"].tolist() == [1, 2]
    assert downs["phrase"].tolist() == ["deal size 314,000"]


def test_top_drivers_point_up_and_down(small_backtest, fitted_close):
    rows = small_backtest.test.features.head(5)
    matrix = fitted_close.matrix_.transform(rows)
    meanings = catalogue_meanings(list(matrix.columns))
    drivers = top_drivers(fitted_close.lgbm_, matrix, top_n=3, meanings=meanings)
    assert set(drivers["row"]) <= set(range(5)) and len(drivers) > 0
    ups = drivers[drivers["direction"] == "up"]
    downs = drivers[drivers["direction"] == "down"]
    assert (ups["contribution"] > 0).all() and (downs["contribution"] < 0).all()
    assert drivers["phrase"].str.len().gt(0).all()
    assert not drivers["phrase"].str.contains("usual age|0-based|: 1.0").any()
    assert drivers.groupby(["row", "direction"]).size().max() <= 3
    assert np.isfinite(drivers["contribution"]).all()


def test_an_unknown_value_is_never_a_reason_up():
    """ "account revenue unknown" was listed as a reason the deal would win: an unknown is a
    data gap, a true reason down but never a buying signal."""
    matrix = pd.DataFrame(
        {
            "account__log_annual_revenue": [np.nan],
            "made__thing": [np.nan],
            "owner__win_rate": [0.31],
            "account__industry": [None],
        }
    )
    trees = _Trees([[0.9, 0.8, 0.3, -0.5, 0.0]])
    drivers = top_drivers(trees, matrix, top_n=3, meanings={"made__thing": "A thing."})
    ups = drivers.loc[drivers["direction"] == "up", "phrase"].tolist()
    downs = drivers.loc[drivers["direction"] == "down", "phrase"].tolist()
    assert ups == ["rep wins 31 % of closed deals"]
    assert downs == ["industry unknown"]
