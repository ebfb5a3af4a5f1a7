"""Compose the feature families into one (deal_id, as_of) feature table, and the labels.

Both frames have one row per deal open at each as-of time, keyed by ``deal_id`` (str)
and ``as_of`` (``datetime64[us, UTC]``), sorted by (as_of, deal_id), so features and
labels align row by row. A family whose table is absent from the CRM is simply left
out. Numbers are float64; categories are pandas categoricals.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from crm.data import CRMData
from crm.schemas import Funnel
from features.accounts import account_features
from features.calendar import calendar_features
from features.deals import deal_features
from features.history import overall_win_rate
from features.labels import label_columns
from features.owners import owner_features
from features.snapshots import Deals, Spine, as_of_index
from features.stage_history import stage_features
from features.touchpoints import touch_features

KEYS = ("deal_id", "as_of")


@dataclass(frozen=True)
class FeatureSet:
    """Features and labels of the same snapshots, row-aligned (same keys, same order)."""

    features: pd.DataFrame
    labels: pd.DataFrame


def build_features(
    data: CRMData,
    *,
    as_of_dates: pd.DatetimeIndex,
    funnel: Funnel,
    windows_days: tuple[int, ...],
    trend_days: int,
    recency_channels: tuple[str, ...],
    prior_strength: float,
    deal_ids: tuple[str, ...] | None = None,
) -> pd.DataFrame:
    """Point-in-time features of every deal open at each of ``as_of_dates``.

    Every value at as_of t uses only rows stamped at or before t; history-based rates use
    only deals closed at or before t. ``windows_days`` are the touch-count windows,
    ``trend_days`` the span of the touch trend, ``recency_channels`` the channels with
    their own days-since-last column, ``prior_strength`` the weight (in closed deals) of
    the overall win rate in smoothed rates. One date gives the scoring snapshot.
    ``deal_ids`` keeps only the rows of those deals (all of ``data`` still counts for
    rates and aggregates): the same rows as the full build, e.g. to score one deal fast.
    """
    deals = Deals.of(data.deals)
    spine = Spine.build(deals, as_of_index(as_of_dates))
    if deal_ids is not None:
        spine = spine.only(deals.codes(pd.Series(list(deal_ids), dtype="str")))
    rates = {"prior_strength": prior_strength, "overall": overall_win_rate(deals, spine.at)}
    columns: dict[str, object] = {}
    columns |= deal_features(deals, spine, funnel=funnel, **rates)
    if data.stage_history is not None:
        columns |= stage_features(data.stage_history, deals, spine, funnel=funnel, **rates)
    if data.touchpoints is not None:
        columns |= touch_features(
            data.touchpoints,
            deals,
            spine,
            windows_days=tuple(windows_days),
            trend_days=trend_days,
            recency_channels=tuple(recency_channels),
        )
    columns |= account_features(data.accounts, deals, spine, funnel=funnel, **rates)
    columns |= owner_features(deals, spine, **rates)
    columns |= calendar_features(deals, spine)
    return _frame(spine, deals, columns)


def build_labels(
    data: CRMData,
    *,
    as_of_dates: pd.DatetimeIndex,
    funnel: Funnel,
    horizons_days: tuple[int, ...],
    data_end: pd.Timestamp,
) -> pd.DataFrame:
    """Labels of the same snapshots as :func:`build_features` (see ``features.labels``).

    ``data_end`` is when the data was extracted (no as_of may be later); events after it
    are unknown, so labels that depend on them are NA.
    """
    deals = Deals.of(data.deals)
    spine = Spine.build(deals, as_of_index(as_of_dates))
    columns = label_columns(
        data.stage_history,
        deals,
        spine,
        funnel=funnel,
        horizons_days=tuple(horizons_days),
        data_end=data_end,
    )
    return _frame(spine, deals, columns)


def build_feature_set(
    data: CRMData,
    *,
    as_of_dates: pd.DatetimeIndex,
    funnel: Funnel,
    windows_days: tuple[int, ...],
    trend_days: int,
    recency_channels: tuple[str, ...],
    prior_strength: float,
    horizons_days: tuple[int, ...],
    data_end: pd.Timestamp,
) -> FeatureSet:
    """Features and labels together (see :func:`build_features` and :func:`build_labels`)."""
    features = build_features(
        data,
        as_of_dates=as_of_dates,
        funnel=funnel,
        windows_days=windows_days,
        trend_days=trend_days,
        recency_channels=recency_channels,
        prior_strength=prior_strength,
    )
    labels = build_labels(
        data,
        as_of_dates=as_of_dates,
        funnel=funnel,
        horizons_days=horizons_days,
        data_end=data_end,
    )
    return FeatureSet(features=features, labels=labels)


def _frame(spine: Spine, deals: Deals, columns: dict[str, object]) -> pd.DataFrame:
    """Keys plus columns in (as_of, deal_id) order, reordering one column at a time (the
    columns are consumed as they go, so memory holds about one table, not two)."""
    order = spine.output_order()
    keys = spine.keys(deals, order)
    data: dict[str, object] = {"deal_id": keys["deal_id"], "as_of": keys["as_of"]}
    for name in list(columns):
        values = columns.pop(name)
        if isinstance(values, pd.api.extensions.ExtensionArray):
            data[name] = values.take(order)
        else:
            data[name] = np.asarray(values)[order]
    return pd.DataFrame(data, copy=False)
