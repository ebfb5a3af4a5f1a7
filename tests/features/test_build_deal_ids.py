"""``build_features(..., deal_ids=...)``: the rows of those deals, identical to the full build
(every rate and aggregate still counts the whole CRM); what the API scores one deal with."""

from __future__ import annotations

import pandas as pd
import pytest
from feature_fixtures import FUNNEL, SETTINGS, generated

from features.build import build_features


@pytest.mark.parametrize("seed", [3, 11])
def test_rows_of_given_deals_equal_the_full_build(seed):
    data = generated(seed)
    times = pd.DatetimeIndex([data.deals["created_at"].quantile(q) for q in (0.5, 0.8, 0.95)])
    full = build_features(data, as_of_dates=times, funnel=FUNNEL, **SETTINGS)
    ids = tuple(full["deal_id"].drop_duplicates().sample(7, random_state=seed)) + ("NO-SUCH",)
    only = build_features(data, as_of_dates=times, funnel=FUNNEL, deal_ids=ids, **SETTINGS)
    expected = full[full["deal_id"].isin(ids)].reset_index(drop=True)
    assert len(only) == len(expected) >= 7
    for column in full.columns:  # categories may list fewer values: compare the values
        left, right = only[column], expected[column]
        if isinstance(right.dtype, pd.CategoricalDtype):
            left, right = left.astype("object"), right.astype("object")
        pd.testing.assert_series_equal(left, right, check_names=False)


def test_no_given_deal_open_gives_no_rows():
    data = generated(3)
    t = pd.DatetimeIndex([data.deals["created_at"].max()])
    assert build_features(data, as_of_dates=t, funnel=FUNNEL, deal_ids=(), **SETTINGS).empty
