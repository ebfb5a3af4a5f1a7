"""The composed feature table: keys, order, dtypes, absent tables, scoring snapshot, and
the catalogue staying in sync with the columns actually built."""

from __future__ import annotations

import pandas as pd
import pytest
from feature_fixtures import FUNNEL, SETTINGS, crm, features_at, generated

from features.build import build_feature_set, build_features
from features.catalog import (
    entry_for,
    feature_catalog,
    feature_entries,
    format_catalog,
    label_entries,
)
from features.snapshots import open_deals_at, snapshot_dates

T0, T1 = pd.Timestamp("2024-03-04", tz="UTC"), pd.Timestamp("2024-12-30", tz="UTC")


@pytest.fixture(scope="module")
def feature_set():
    return build_feature_set(
        generated(11),
        as_of_dates=snapshot_dates(T0, T1, "W-MON"),
        funnel=FUNNEL,
        horizons_days=(30, 90),
        data_end=pd.Timestamp("2024-12-31", tz="UTC"),
        **SETTINGS,
    )


def test_keys_order_and_dtypes(feature_set):
    f = feature_set.features
    assert list(f.columns[:2]) == ["deal_id", "as_of"]
    assert str(f["deal_id"].dtype) == "str" and str(f["as_of"].dtype) == "datetime64[us, UTC]"
    assert not f.duplicated(["deal_id", "as_of"]).any()
    pd.testing.assert_frame_equal(
        f[["deal_id", "as_of"]],
        f.sort_values(["as_of", "deal_id"])[["deal_id", "as_of"]].reset_index(drop=True),
    )
    kinds = {str(t) for t in f.dtypes.iloc[2:]}
    assert kinds <= {"float64", "category"}, kinds


def test_spine_is_the_open_deals(feature_set):
    data = generated(11)
    spine = open_deals_at(data.deals, snapshot_dates(T0, T1, "W-MON"))
    pd.testing.assert_frame_equal(feature_set.features[["deal_id", "as_of"]], spine)
    pd.testing.assert_frame_equal(feature_set.labels[["deal_id", "as_of"]], spine)


def test_scoring_snapshot_equals_that_date_of_the_series(feature_set):
    t = pd.Timestamp("2024-08-05", tz="UTC")
    one = build_features(
        generated(11), as_of_dates=pd.DatetimeIndex([t]), funnel=FUNNEL, **SETTINGS
    )
    series = feature_set.features
    same = series[series["as_of"] == t].reset_index(drop=True)[one.columns]
    # category sets follow the rows present, so compare categorical columns by value
    pd.testing.assert_frame_equal(_plain(one), _plain(same), check_exact=True)


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.apply(lambda c: c.astype("str") if c.dtype == "category" else c)


def test_absent_tables_leave_their_families_out():
    data = crm([{"deal_id": "D", "created_at": "2024-01-01", "amount": 10, "source": "web"}])
    f = features_at(data, "2024-01-02")
    families = {c.split("__")[0] for c in f.columns[2:]}
    assert families == {"deal", "account", "owner", "cal"}  # no stage or touch features
    assert not any(c.startswith("account__log") for c in f.columns)  # no accounts table


def test_no_open_deal_gives_an_empty_table_with_the_same_columns():
    data = generated(11)
    empty = features_at(data, "2020-01-01")
    assert empty.empty and "stage__current" in empty.columns


def test_every_column_has_exactly_one_catalogue_entry_and_every_entry_is_built(feature_set):
    entries = feature_entries()
    used = set()
    for column in feature_set.features.columns[2:]:
        hits = entry_for(column, entries)
        assert len(hits) == 1, (column, hits)
        used.add(hits[0].name)
    # custom account attributes are the one entry the synthetic CRM does not exercise
    assert {e.name for e in entries} - used == {"account__attr_{attribute}"}
    labels = label_entries()
    for column in feature_set.labels.columns[2:]:
        assert len(entry_for(column, labels)) == 1, column


def test_catalogue_reads_as_a_table():
    catalog = feature_catalog(include_labels=True)
    assert list(catalog.columns) == ["name", "family", "kind", "meaning"]
    assert catalog["meaning"].str.len().min() > 10
    text = format_catalog(catalog)
    assert (
        "[touchpoints]" in text and "tp__channel_{channel}_{window}d" in text and "[label]" in text
    )


def test_only_the_required_columns():
    """Optional contract columns may be absent from a CRM: their features are left out."""
    data = crm(
        [{"deal_id": "D", "created_at": "2024-01-01"}],
        touches=[{"account_id": "A", "occurred_at": "2024-01-02", "channel": "email"}],
    )
    deals = data.deals[["deal_id", "created_at"]]
    touches = data.touchpoints[["account_id", "occurred_at", "channel"]]
    slim = data.with_table("deals", deals).with_table("touchpoints", touches)
    f = features_at(slim, "2024-01-03")
    assert f["deal__age_days"].tolist() == [2.0] and f["tp__touches_total"].tolist() == [0.0]
    assert "deal__source" not in f and "account__n_won" not in f and "owner__win_rate" not in f
    labels = build_feature_set(
        slim,
        as_of_dates=pd.DatetimeIndex([pd.Timestamp("2024-01-03", tz="UTC")]),
        funnel=FUNNEL,
        horizons_days=(30,),
        data_end=pd.Timestamp("2024-03-01", tz="UTC"),
        **SETTINGS,
    ).labels
    assert labels["won_within_30d"].tolist() == [False]


def test_empty_tables_are_no_touches_not_missing_families():
    data = crm(
        [{"deal_id": "D", "created_at": "2024-01-01", "account_id": "A"}],
        stages=[],
        touches=[],
        accounts=[],
    )
    f = features_at(data, "2024-01-05")
    assert f["tp__touches_total"].tolist() == [0.0] and f["stage__n_changes"].tolist() == [0.0]
    assert f["account__other_open_deals"].tolist() == [0.0]
