"""Calendar family: where as_of sits in the selling calendar.

Quarters are calendar quarters in UTC. ``expected_close_date`` is the rep's current
close date in the export (the CRM keeps no history of it), so a date pushed out after
as_of is what the model sees: treat it as a soft feature.
"""

from __future__ import annotations

import numpy as np

from features.entry import Feature
from features.point_in_time import NAT, days, days_since, to_us
from features.snapshots import Deals, Spine

CATALOG = (
    Feature(
        "cal__days_to_quarter_end",
        "calendar",
        "number",
        "Days from as_of to the end of its calendar quarter (UTC).",
    ),
    Feature(
        "cal__days_past_expected_close",
        "calendar",
        "number",
        "Days since the rep's expected close date (negative = still ahead; empty if none).",
    ),
)


def calendar_features(deals: Deals, spine: Spine) -> dict[str, np.ndarray]:
    """Calendar columns for every spine row."""
    out = {"cal__days_to_quarter_end": days_to_quarter_end(spine.at.values)[spine.at.index]}
    if "expected_close_date" in deals.frame:
        expected = to_us(deals.frame["expected_close_date"])[spine.deal]
        out["cal__days_past_expected_close"] = days_since(spine.at, expected)
    return out


def days_to_quarter_end(times: np.ndarray) -> np.ndarray:
    """Days from each time (int64 us, UTC) to the start of the next calendar quarter
    (NaN for a missing time). Month arithmetic in NumPy: months since 1970-01, which
    starts a quarter."""
    times = np.asarray(times, dtype=np.int64)
    months = times.astype("datetime64[us]").astype("datetime64[M]").astype(np.int64)
    start = ((months // 3 + 1) * 3).astype("datetime64[M]").astype("datetime64[us]")
    out = days(start.astype(np.int64) - times)
    return np.where(times == NAT, np.nan, out)
