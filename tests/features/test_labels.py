"""Labels: eventual outcome, next stage (regressions included) and won-within-H, with
explicit censoring: what the data cannot know yet is NA, never "lost" or False."""

from __future__ import annotations

import pandas as pd
import pytest
from feature_fixtures import crm, features_at, labels_at, row

END = "2024-06-01"  # data_end: the extraction time

DEALS = [
    {"deal_id": "W", "created_at": "2024-01-01", "closed_at": "2024-02-15", "outcome": "won"},
    {"deal_id": "L", "created_at": "2024-01-01", "closed_at": "2024-03-01", "outcome": "lost"},
    {"deal_id": "O", "created_at": "2024-01-01"},  # open at data_end
    {"deal_id": "C", "created_at": "2024-05-01", "closed_at": "2024-05-30", "outcome": "won"},
    # closes after data_end (a backtest cut): the data cannot know it
    {"deal_id": "E", "created_at": "2024-01-01", "closed_at": "2024-07-01", "outcome": "won"},
]
STAGES = [
    ("W", "lead", "2024-01-01"),
    ("W", "qualified", "2024-01-10"),
    ("W", "meeting", "2024-01-20"),
    ("W", "qualified", "2024-02-01"),  # regression
    ("W", "won", "2024-02-15"),
    ("L", "lead", "2024-01-01"),  # its loss has no stage row: the close is the next step
    ("O", "lead", "2024-01-01"),
    ("O", "qualified", "2024-05-20"),
    ("E", "lead", "2024-01-01"),
    ("E", "won", "2024-07-01"),
]


@pytest.fixture(scope="module")
def lab():
    data = crm(DEALS, stages=STAGES)
    return labels_at(data, "2024-01-15", "2024-01-25", "2024-02-05", "2024-05-25", data_end=END)


def test_outcome_and_days_to_close_are_censored_at_data_end(lab):
    assert row(lab, "W", "2024-01-15")["outcome"] == "won"
    assert row(lab, "W", "2024-01-15")["days_to_close"] == 31
    assert row(lab, "L", "2024-01-15")["outcome"] == "lost"
    for deal_id in ("O", "E"):
        r = row(lab, deal_id, "2024-05-25")
        assert pd.isna(r["outcome"]) and pd.isna(r["days_to_close"])
    assert row(lab, "O", "2024-05-25")["days_observed"] == 7


def test_next_stage_and_days_to_it(lab):
    assert tuple(row(lab, "W", "2024-01-15")[["next_stage", "days_to_next_stage"]]) == (
        "meeting",
        5,
    )
    # the regression is the next stage entered
    assert tuple(row(lab, "W", "2024-01-25")[["next_stage", "days_to_next_stage"]]) == (
        "qualified",
        7,
    )
    assert tuple(row(lab, "W", "2024-02-05")[["next_stage", "days_to_next_stage"]]) == ("won", 10)
    assert tuple(row(lab, "L", "2024-01-15")[["next_stage", "days_to_next_stage"]]) == ("lost", 46)
    assert tuple(row(lab, "O", "2024-01-15")[["next_stage", "days_to_next_stage"]]) == (
        "qualified",
        126,
    )
    for deal_id in ("O", "E"):  # nothing more happens by data_end
        r = row(lab, deal_id, "2024-05-25")
        assert pd.isna(r["next_stage"]) and pd.isna(r["days_to_next_stage"])


def test_won_within_horizon_true_false_or_unknown(lab):
    def won(deal_id, as_of, h):
        value = row(lab, deal_id, as_of)[f"won_within_{h}d"]
        return None if pd.isna(value) else bool(value)

    assert won("W", "2024-01-15", 30) is False  # won, but after 31 days
    assert won("W", "2024-01-15", 90) is True
    assert won("W", "2024-01-25", 30) is True
    assert won("L", "2024-01-15", 90) is False  # lost
    assert won("O", "2024-01-15", 90) is False  # still open 90 days on, within the data
    assert won("O", "2024-05-25", 30) is None  # the data ends 7 days later: unknown
    assert won("C", "2024-05-25", 30) is True  # known early: won within 5 days
    assert won("E", "2024-05-25", 30) is None  # its win lies after data_end
    assert won("E", "2024-01-15", 30) is False  # but it was surely open on 02-14


def test_label_dtypes_and_alignment_with_features(lab):
    assert str(lab["outcome"].dtype) == "str"
    assert str(lab["won_within_30d"].dtype) == "boolean"
    assert lab["next_stage"].dtype == "category"
    feats = features_at(
        crm(DEALS, stages=STAGES), "2024-01-15", "2024-01-25", "2024-02-05", "2024-05-25"
    )
    pd.testing.assert_frame_equal(feats[["deal_id", "as_of"]], lab[["deal_id", "as_of"]])
    assert not set(feats.columns) & (set(lab.columns) - {"deal_id", "as_of"})


def test_data_end_before_an_as_of_is_refused():
    with pytest.raises(ValueError, match="data_end"):
        labels_at(crm(DEALS), "2024-07-01", data_end=END)
