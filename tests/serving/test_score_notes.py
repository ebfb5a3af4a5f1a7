"""The notes of a scored list: a moment after the data, drifted features, owners picked."""

from __future__ import annotations

import pandas as pd
import pytest

from serving.score_notes import (
    NoOwnerDealsError,
    as_of_messages,
    drift_messages,
    leads_text,
    owners_only,
)

END = pd.Timestamp("2025-03-10", tz="UTC")


def test_a_moment_after_the_data_says_how_many_days():
    assert as_of_messages(END, END) == []
    (text,) = as_of_messages(END + pd.Timedelta(days=30), END)
    assert text.startswith("--as-of is 30 days after")


def test_drift_is_said_once_with_what_to_do():
    assert drift_messages([]) == []
    (text,) = drift_messages([{"feature": "touch__emails_30d", "reason": "missing"}])
    assert "touch__emails_30d" in text and "dealcast train" in text


def test_owners_keep_their_rank_and_unknown_owners_are_named():
    leads = pd.DataFrame({"owner_id": ["a", "b", "a"], "rank": [1, 2, 3]})
    picked, unknown = owners_only(leads, ("a", "zz"), when=END)
    assert picked["rank"].tolist() == [1, 3] and unknown == ["zz"]
    with pytest.raises(NoOwnerDealsError, match="owner\\(s\\) zz"):
        owners_only(leads, ("zz",), when=END)


def test_the_text_says_how_many_were_exported_and_lists_the_top():
    leads = pd.DataFrame({
        "rank": [1, 2], "deal_id": ["D1", "D2"], "owner_id": ["a", None],
        "stage": ["demo", "lead"], "amount": [1000.0, None], "p_win": [0.5, 0.25],
        "expected_value": [500.0, None],
    })  # fmt: skip
    text = leads_text(leads, as_of=END, open_deals=5, seconds=1.25, messages=["note"], top=1)
    lines = text.splitlines()
    assert lines[0].endswith("in 1.2 s; exporting 2") and lines[1] == "note"
    assert lines[3].split() == ["1", "D1", "a", "demo", "1,000", "0.500", "500"]
    assert len(lines) == 4
