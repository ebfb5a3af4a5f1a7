"""Owner family: the sales rep's track record and workload at as_of.

The track record counts only the rep's deals closed on or before as_of; the workload
counts the rep's deals open at as_of (created by then, not closed by then).
"""

from __future__ import annotations

import numpy as np

from features.entry import Feature
from features.history import ClosedCounts, group_codes, smoothed_rate
from features.point_in_time import EventIndex
from features.snapshots import Deals, Spine

CATALOG = (
    Feature(
        "owner__win_rate",
        "owner",
        "number",
        "The rep's win rate over deals closed on or before as_of, shrunk towards the "
        "overall win rate then (a new rep gets the overall rate).",
    ),
    Feature("owner__n_closed", "owner", "number", "The rep's deals closed on or before as_of."),
    Feature(
        "owner__open_deals",
        "owner",
        "number",
        "Deals the rep has open at as_of, this one included (workload).",
    ),
)


def owner_features(
    deals: Deals, spine: Spine, *, prior_strength: float, overall: np.ndarray
) -> dict[str, np.ndarray]:
    """Owner columns for every spine row; deals without an owner get NaN."""
    if "owner_id" not in deals.frame:
        return {}
    codes, n = group_codes(deals.frame["owner_id"])
    group = codes[spine.deal]
    has = group >= 0
    won, lost = ClosedCounts.of(deals, codes, n).at(group, spine.at)
    created = EventIndex(codes, deals.created, n_groups=n).count_le(group, spine.at)
    closed_all = deals.close_time(np.ones(len(deals), dtype=bool))
    closed = EventIndex(codes, closed_all, n_groups=n).count_le(group, spine.at)
    return {
        "owner__win_rate": np.where(
            has, smoothed_rate(won, lost, overall, prior_strength=prior_strength), np.nan
        ),
        "owner__n_closed": np.where(has, won + lost, np.nan),
        "owner__open_deals": np.where(has, created - closed, np.nan),
    }
