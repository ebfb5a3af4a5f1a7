"""What changed since the last export: new deals, stage moves, p_win moves, closed deals."""

from __future__ import annotations

import numpy as np
import pandas as pd

from serving.changes import COLUMNS, KINDS, change_counts, export_changes

DAY1 = pd.Timestamp("2026-06-01T06:00Z")
DAY2 = pd.Timestamp("2026-06-02T06:00Z")


def _leads(rows, as_of):
    frame = pd.DataFrame(rows, columns=["deal_id", "owner_id", "stage", "p_win", "amount"])
    frame["rank"] = np.arange(1, len(frame) + 1)
    frame["as_of"] = as_of
    return frame


PREVIOUS = _leads(
    [
        ("A", "U1", "proposal", 0.50, 100.0),  # p_win up 0.20
        ("B", "U1", "meeting", 0.30, 50.0),  # moved to proposal, p_win +0.05 (below 0.10)
        ("C", "U2", "negotiation", 0.80, 70.0),  # won since
        ("D", "U2", "lead", 0.10, 10.0),  # lost since
        ("E", "U3", "lead", 0.20, 20.0),  # gone from the CRM
        ("F", "U3", "qualified", 0.40, 30.0),  # p_win down 0.15
        ("G", "U3", "qualified", 0.40, 30.0),  # unchanged
    ],
    DAY1,
)
CURRENT = _leads(
    [
        ("A", "U1", "proposal", 0.70, 100.0),
        ("H", "U4", "lead", 0.05, None),  # new
        ("B", "U1", "proposal", 0.35, 50.0),
        ("F", "U3", "qualified", 0.25, 30.0),
        ("G", "U3", "qualified", 0.41, 30.0),
    ],
    DAY2,
)
DEALS = pd.DataFrame(
    {
        "deal_id": ["A", "B", "C", "D", "F", "G", "H"],
        "outcome": [None, None, "won", "lost", None, None, None],
    }
)


def _changes(**kw):
    return export_changes(
        CURRENT, PREVIOUS, deals=DEALS, won_label="won", lost_label="lost", threshold=0.10, **kw
    )


def test_every_kind_of_change_is_found_once():
    out = _changes()
    assert list(out.columns) == list(COLUMNS)
    pairs = list(zip(out["change"], out["deal_id"], strict=True))
    assert pairs == [
        ("won", "C"),
        ("lost", "D"),
        ("no longer open", "E"),
        ("new", "H"),
        ("stage moved", "B"),
        ("p_win up", "A"),
        ("p_win down", "F"),
    ]
    assert change_counts(out) == dict.fromkeys(KINDS, 1)


def test_rows_carry_before_and_now():
    out = _changes().set_index("change")
    moved = out.loc["stage moved"]
    assert (moved["stage_before"], moved["stage_now"]) == ("meeting", "proposal")
    assert moved["p_win_change"] == 0.35 - 0.30
    up = out.loc["p_win up"]
    assert (up["p_win_before"], up["p_win_now"], round(up["p_win_change"], 6)) == (0.5, 0.7, 0.2)
    won = out.loc["won"]
    assert won["stage_before"] == "negotiation" and won["stage_now"] == "won"
    assert np.isnan(won["p_win_now"]) and won["p_win_before"] == 0.8
    new = out.loc["new"]
    assert new["stage_before"] is None and new["p_win_now"] == 0.05
    assert (out["previous_as_of"] == DAY1).all()


def test_threshold_is_inclusive_and_absolute():
    out = export_changes(
        CURRENT, PREVIOUS, deals=DEALS, won_label="won", lost_label="lost", threshold=0.2
    )
    assert set(out.loc[out["change"].str.startswith("p_win"), "deal_id"]) == {"A"}


def test_the_same_export_twice_changes_nothing():
    out = export_changes(
        CURRENT, CURRENT, deals=DEALS, won_label="won", lost_label="lost", threshold=0.1
    )
    assert out.empty and list(out.columns) == list(COLUMNS)
    assert change_counts(out) == dict.fromkeys(KINDS, 0)


def test_an_export_is_of_this_crm_when_at_least_half_its_deals_are_in_it():
    from serving.changes import SAME_CRM_SHARE, of_this_crm

    deals = pd.DataFrame({"deal_id": ["a", "b", "c", "d"]})
    half = pd.DataFrame({"deal_id": ["a", "b", "x", "y"]})
    under = pd.DataFrame({"deal_id": ["a", "x", "y", "z"]})
    assert SAME_CRM_SHARE == 0.5
    assert of_this_crm(half, deals) and not of_this_crm(under, deals)
    assert of_this_crm(half.iloc[:0], deals)  # an empty export compares with any CRM
    numbers = pd.DataFrame({"deal_id": [1, 2]})  # ids read as numbers in one file only
    assert of_this_crm(numbers, pd.DataFrame({"deal_id": ["1", "2"]}))
