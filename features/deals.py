"""Deal family: what the deal record itself says at as_of.

The deal table holds one current value per field (no field history), so static fields
(amount, source, product, owner, custom attributes) are taken as they are in the export.
A field the sales team fills in late or rewrites at close ("lead quality", a final
amount) leaks the outcome: exclude it in the funnel config (``exclude_attributes``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crm.schemas import Funnel, attribute_columns
from features.entry import Feature, column_name
from features.history import (
    ClosedCounts,
    as_float,
    categorical,
    group_codes,
    smoothed_rate,
    take_column,
)
from features.point_in_time import days
from features.snapshots import Deals, Spine

CATALOG = (
    Feature("deal__age_days", "deal", "number", "Days since the deal was created."),
    Feature("deal__log_amount", "deal", "number", "Natural log of (1 + expected deal amount)."),
    Feature("deal__source", "deal", "category", "Lead source / first channel."),
    Feature("deal__product", "deal", "category", "Product the deal is for."),
    Feature(
        "deal__owner_id",
        "deal",
        "category",
        "The sales rep who owns the deal. An identity, not a behaviour: models may drop it "
        "so scores do not depend on who the rep is.",
    ),
    Feature(
        "deal__source_win_rate",
        "deal",
        "number",
        "Win rate of deals from the same source that closed on or before as_of, shrunk "
        "towards the overall win rate then (prior worth prior_strength deals).",
    ),
    Feature(
        "deal__attr_{attribute}",
        "deal",
        "number or category",
        "A custom column of the deals table, as exported (number or category). Excluded "
        "when listed in the funnel's exclude_attributes.",
    ),
)
_CATEGORIES = ("source", "product", "owner_id")


def deal_features(
    deals: Deals, spine: Spine, *, funnel: Funnel, prior_strength: float, overall: np.ndarray
) -> dict[str, object]:
    """Deal columns for every spine row; ``overall`` is the overall win rate per row."""
    frame = deals.frame
    out: dict[str, object] = {
        "deal__age_days": days(spine.at.times() - deals.created[spine.deal]),
    }
    if "amount" in frame:
        out["deal__log_amount"] = np.log1p(as_float(frame["amount"]))[spine.deal]
    for column in _CATEGORIES:
        if column in frame:
            out[f"deal__{column}"] = categorical(take_column(frame, column, spine.deal))
    if "source" in frame:
        out["deal__source_win_rate"] = source_win_rate(
            deals, spine, prior_strength=prior_strength, overall=overall
        )
    out.update(attribute_features(frame, spine.deal, table="deals", funnel=funnel, prefix="deal"))
    return out


def source_win_rate(
    deals: Deals, spine: Spine, *, prior_strength: float, overall: np.ndarray
) -> np.ndarray:
    """Smoothed win rate of the deal's source among deals closed at or before as_of."""
    codes, n = group_codes(deals.frame["source"])
    won, lost = ClosedCounts.of(deals, codes, n).at(codes[spine.deal], spine.at)
    return smoothed_rate(won, lost, overall, prior_strength=prior_strength)


def attribute_features(
    frame: pd.DataFrame, rows: np.ndarray, *, table: str, funnel: Funnel, prefix: str
) -> dict[str, object]:
    """``<prefix>__attr_<name>`` for each custom column not excluded by the funnel config.

    Numbers stay float64; anything else becomes a categorical. ``rows`` are positions in
    ``frame`` (-1 = no row: NaN / missing category).
    """
    out: dict[str, object] = {}
    for column in attribute_columns(frame, table):
        if column in funnel.exclude_attributes:
            continue
        values = take_column(frame, column, rows)
        name = f"{prefix}__attr_{column_name(column)}"
        while name in out:  # two custom columns with the same name once cleaned
            name += "_"
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            out[name] = as_float(values)
        else:
            out[name] = categorical(values)
    return out
