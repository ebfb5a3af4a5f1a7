"""The model history's pure parts: served labels, the rollback default, settings
differences, the comparison table and the listing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.registry_history import (
    VersionRecord,
    compare_scores,
    format_history,
    previous_champion,
    served_label,
    settings_differences,
)

T0 = pd.Timestamp("2026-11-01", tz="UTC")


def record(version: str, **kw) -> VersionRecord:
    base = dict(version=version, partner=version, created=T0 + pd.Timedelta(days=int(version)),
                cutoff="2026-10-01 00:00:00+00:00", data_end="2026-10-01", backtest_cutoff="",
                fingerprint="abcdef0123456789", champion=False, note="")  # fmt: skip
    return VersionRecord(**(base | kw))


def test_served_is_unknown_before_the_record_began_and_no_after():
    since = T0 + pd.Timedelta(days=2, hours=12)
    assert served_label(record("1", tracked_since=since)) == "unknown"
    assert served_label(record("3", tracked_since=since)) == "no"
    assert served_label(record("1")) == "unknown"  # nothing recorded yet
    assert served_label(record("1", promoted_at_train=True)) == "yes"
    assert served_label(record("2", served_from="2026-11-03T00:00:00+00:00")) == "yes"
    assert served_label(record("4", champion=True)) == "now"


def test_rollback_goes_to_the_version_the_alias_left_last():
    records = [
        record("1", served_from="a", served_until="2026-11-02T00:00:00+00:00"),
        record("2", served_from="b", served_until="2026-11-05T00:00:00+00:00"),
        record("3", champion=True, served_from="c"),
    ]
    assert previous_champion(records, current="3") == "2"


def test_rollback_without_records_takes_the_newest_promoted_older_version():
    records = [record("1", promoted_at_train=True), record("2"), record("3", champion=True)]
    assert previous_champion(records, current="3") == "1"
    assert previous_champion([record("1", champion=True)], current="1") is None


def test_settings_differences_name_changed_and_missing_keys():
    ours = {"train.close.n_estimators": "40", "base.seed": "7", "features.freq": "W-MON"}
    theirs = {"train.close.n_estimators": "40", "base.seed": "8"}
    assert settings_differences(ours, theirs) == ["base.seed", "features.freq"]
    assert settings_differences(ours, dict(ours)) == []


def test_compare_scores_counts_known_rows_and_takes_the_difference():
    truth = pd.Series([True, False, pd.NA, True, False, False], dtype="boolean")
    a = pd.Series([0.9, 0.1, 0.5, 0.8, 0.2, 0.3])
    b = pd.Series([0.6, 0.4, 0.5, 0.5, 0.5, 0.4])
    table = compare_scores(truth, {"v1": a, "v2": b}, ece_bins=2)
    assert list(table.index) == ["v1", "v2", "difference"]
    assert (table["n"] == 5).all()
    assert table.loc["difference", "log_loss"] == pytest.approx(
        table.loc["v2", "log_loss"] - table.loc["v1", "log_loss"]
    )
    assert table.loc["v1", "auc"] == 1.0 and np.isfinite(table.loc["v2", "ece"])


def test_listing_marks_the_champion_and_shortens_the_fingerprint():
    text = format_history(
        [record("1", metrics={"log_loss": 0.41, "auc": 0.8, "ece": 0.02}),
         record("2", champion=True, note="first model: no champion yet")],
        model_name="close",
    )  # fmt: skip
    lines = text.splitlines()
    assert lines[2].startswith("v2 *") and "abcdef01 " in lines[2] and "now" in lines[2]
    assert "0.4100" in lines[3] and "unknown" in lines[3]
    assert "no registered versions" in format_history([], model_name="close")
