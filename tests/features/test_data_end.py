"""The data's end ignores far-future stamps; what lies beyond it is excluded and counted;
no snapshot plan can explode."""

from __future__ import annotations

import pandas as pd
import pytest

from crm.data import CRMData
from features.data_end import DataEndError, exclude_after, plausible_end
from features.snapshots import MAX_SNAPSHOTS, TooManySnapshotsError, snapshot_dates
from features.spec import FeatureSpec, describe_differences

CLOCK = pd.Timestamp("2025-06-30 23:59", tz="UTC")


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def _data() -> CRMData:
    deals = pd.DataFrame(
        {
            "deal_id": pd.array(["A", "B", "C", "FUT"], dtype="str"),
            "created_at": [ts("2025-01-01"), ts("2025-02-01"), ts("2025-03-01"), ts("2099-01-01")],
            "closed_at": [ts("2025-04-01"), pd.NaT, ts("9999-12-31"), pd.NaT],
            "outcome": pd.array(["won", None, "lost", None], dtype="str"),
        }
    )
    touches = pd.DataFrame(
        {
            "touchpoint_id": pd.array(["t1", "t2", "t3", "t4"], dtype="str"),
            "deal_id": pd.array(["A", "B", "B", "FUT"], dtype="str"),
            "occurred_at": [ts("2025-01-05"), ts("2025-06-01"), ts("2099-01-01"),
                            ts("2025-06-02")],
            "channel": pd.array(["email"] * 4, dtype="str"),
        }
    )  # fmt: skip
    return CRMData(deals=deals, touchpoints=touches)


def test_the_end_is_the_latest_event_not_after_the_clock():
    assert plausible_end(_data(), given=None, clock=CLOCK) == ts("2025-06-02")
    assert plausible_end(_data(), given=ts("2025-05-01"), clock=CLOCK) == ts("2025-05-01")
    with pytest.raises(DataEndError, match="after the clock"):
        plausible_end(_data(), given=ts("2026-01-01"), clock=CLOCK)
    with pytest.raises(DataEndError, match="no event"):
        plausible_end(_data(), given=None, clock=ts("2000-01-01"))


def test_rows_after_the_end_are_excluded_and_counted():
    end = plausible_end(_data(), given=None, clock=CLOCK)
    trimmed, excluded = exclude_after(_data(), end)
    assert list(trimmed.deals["deal_id"]) == ["A", "B", "C"]
    c = trimmed.deals.set_index("deal_id").loc["C"]
    assert pd.isna(c["closed_at"]) and pd.isna(c["outcome"])  # still open at the end
    assert list(trimmed.touchpoints["touchpoint_id"]) == ["t1", "t2"]
    by = {(e.table, e.column): e for e in excluded}
    assert by["deals", "created_at"].rows == 1 and "FUT" in by["deals", "created_at"].example
    assert by["deals", "closed_at"].rows == 1 and "9999-12-31" in by["deals", "closed_at"].example
    assert by["touchpoints", "occurred_at"].rows == 1
    assert by["touchpoints", "deal_id"].rows == 1  # t4 belongs to the excluded deal
    message = by["touchpoints", "occurred_at"].message()
    assert message.startswith("touchpoints.occurred_at: 1 row(s) after")
    assert "touchpoint_id t3 at 2099" in message


def test_nothing_after_the_end_leaves_the_data_as_it_is():
    data = _data()
    trimmed, excluded = exclude_after(data, ts("9999-12-31 23:59"))
    assert excluded == [] and trimmed.deals is data.deals


def test_a_huge_snapshot_plan_is_an_error_naming_freq_start_and_end():
    with pytest.raises(TooManySnapshotsError, match=r"'W-MON' from 2024-01-01 to 9999-12-31"):
        snapshot_dates(ts("2024-01-01"), ts("9999-12-31"), "W-MON")
    with pytest.raises(TooManySnapshotsError, match="more than"):
        snapshot_dates(ts("1900-01-01"), ts("2025-01-01"), "D")
    dates = snapshot_dates(ts("2024-01-01"), ts("2024-03-01"), "W-MON")
    assert len(dates) == 9 and len(dates) < MAX_SNAPSHOTS


def test_the_feature_spec_round_trips_and_names_its_differences():
    spec = FeatureSpec("W-MON", [7, 30], 30, ["meeting"], 20)
    assert FeatureSpec.from_json(spec.to_json()) == spec
    other = FeatureSpec("W-MON", (7, 30), 30, ("meeting",), 1000.0)
    diffs = spec.differences(other)
    assert diffs == [("prior_strength", 20.0, 1000.0)]
    text = describe_differences(diffs, ours="champion", theirs="params.yaml")
    assert text == "features.prior_strength: champion 20.0, params.yaml 1000.0"
    with pytest.raises(ValueError, match="not a feature spec"):
        FeatureSpec.from_json('{"freq": "D"}')
