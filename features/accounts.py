"""Account family: who the buyer is and what its other deals show at as_of.

Firmographics come from the accounts table and are used only once the account row is
known (``created_at <= as_of``, or no ``created_at``). The account's deal history needs
only ``deals.account_id``: its other deals open at as_of and its deals closed on or
before as_of.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crm.schemas import Funnel
from features.deals import attribute_features
from features.entry import Feature
from features.history import (
    ClosedCounts,
    as_float,
    categorical,
    group_codes,
    smoothed_rate,
    take_column,
)
from features.point_in_time import NAT, EventIndex, days_since, index_in, to_us
from features.snapshots import Deals, Spine

CATALOG = (
    Feature("account__industry", "account", "category", "The buying company's sector."),
    Feature("account__country", "account", "category", "The buying company's country."),
    Feature("account__log_employees", "account", "number", "Natural log of (1 + head count)."),
    Feature(
        "account__log_annual_revenue",
        "account",
        "number",
        "Natural log of (1 + the account's annual revenue).",
    ),
    Feature("account__age_days", "account", "number", "Days since the account entered the CRM."),
    Feature(
        "account__attr_{attribute}",
        "account",
        "number or category",
        "A custom column of the accounts table, as exported (number or category).",
    ),
    Feature(
        "account__other_open_deals",
        "account",
        "number",
        "Other deals of the same account open at as_of (this deal not counted).",
    ),
    Feature("account__n_won", "account", "number", "The account's deals won on or before as_of."),
    Feature("account__n_lost", "account", "number", "The account's deals lost on or before as_of."),
    Feature(
        "account__win_rate",
        "account",
        "number",
        "The account's win rate over deals closed on or before as_of, shrunk towards the "
        "overall win rate then (a new account gets the overall rate).",
    ),
)


def account_features(
    accounts: pd.DataFrame | None,
    deals: Deals,
    spine: Spine,
    *,
    funnel: Funnel,
    prior_strength: float,
    overall: np.ndarray,
) -> dict[str, object]:
    """Account columns for every spine row; deals without an account get NaN / missing."""
    if "account_id" not in deals.frame:
        return {}
    out: dict[str, object] = {}
    if accounts is not None:
        out.update(firmographics(accounts, deals, spine, funnel=funnel))
    out.update(account_history(deals, spine, prior_strength=prior_strength, overall=overall))
    return out


def firmographics(
    accounts: pd.DataFrame, deals: Deals, spine: Spine, *, funnel: Funnel
) -> dict[str, object]:
    """The account row's fields, hidden (NaN) while the row is not yet known at as_of."""
    table = accounts.drop_duplicates("account_id").reset_index(drop=True)
    of_deal = index_in(deals.frame["account_id"], pd.Index(table["account_id"].astype("str")))
    row = of_deal[spine.deal].astype(np.int64)
    created = to_us(table["created_at"]) if "created_at" in table else np.full(len(table), NAT)
    row_created = np.where(row >= 0, created[np.maximum(row, 0)] if len(table) else NAT, NAT)
    row = np.where((row_created == NAT) | (row_created <= spine.at.times()), row, -1)
    out: dict[str, object] = {}
    for column in ("industry", "country"):
        if column in table:
            out[f"account__{column}"] = categorical(take_column(table, column, row))
    for column, name in (("employees", "log_employees"), ("annual_revenue", "log_annual_revenue")):
        if column in table:
            out[f"account__{name}"] = np.log1p(as_float(take_column(table, column, row)))
    if "created_at" in table:
        known = np.where(row >= 0, row_created, NAT)
        out["account__age_days"] = days_since(spine.at, known)
    out.update(attribute_features(table, row, table="accounts", funnel=funnel, prefix="account"))
    return out


def account_history(
    deals: Deals, spine: Spine, *, prior_strength: float, overall: np.ndarray
) -> dict[str, np.ndarray]:
    """Other open deals and earlier outcomes of the deal's account at as_of."""
    codes, n = group_codes(deals.frame["account_id"])
    group = codes[spine.deal]
    has = group >= 0
    created = EventIndex(codes, deals.created, n_groups=n).count_le(group, spine.at)
    closed_all = deals.close_time(np.ones(len(deals), dtype=bool))
    closed = EventIndex(codes, closed_all, n_groups=n).count_le(group, spine.at)
    won, lost = ClosedCounts.of(deals, codes, n).at(group, spine.at)
    return {
        "account__other_open_deals": np.where(has, created - closed - 1, np.nan),
        "account__n_won": np.where(has, won, np.nan),
        "account__n_lost": np.where(has, lost, np.nan),
        "account__win_rate": np.where(
            has, smoothed_rate(won, lost, overall, prior_strength=prior_strength), np.nan
        ),
    }
