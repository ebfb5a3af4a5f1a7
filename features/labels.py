"""Labels: what happened to each (deal, as_of) snapshot afterwards, as far as the data knows.

Labels live in their own frame and never among the features. ``data_end`` is when the
data was extracted: an event is known only if it happened at or before it. Anything the
data cannot know yet is missing (NA), never "lost" or False: a deal still open at
data_end has no outcome; ``won_within_{H}d`` is known once the deal was won within H
days, lost, won later than that, or still open H days after as_of.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crm.schemas import LOST, WON, Funnel
from features.entry import Feature
from features.point_in_time import NAT, US_PER_DAY, days, to_us
from features.snapshots import Deals, Spine
from features.stage_history import StageRows

CATALOG = (
    Feature(
        "outcome",
        "label",
        "label",
        "How the deal ended: won or lost; empty if still open at data_end (censored).",
    ),
    Feature(
        "days_to_close",
        "label",
        "label",
        "Days from as_of to the close; empty if still open at data_end.",
    ),
    Feature(
        "days_observed",
        "label",
        "label",
        "Days from as_of to data_end: how long the data watched the deal after as_of "
        "(the censoring time for survival models).",
    ),
    Feature(
        "next_stage",
        "label",
        "label",
        "The next stage the deal entered after as_of (an open stage, won or lost); empty "
        "if nothing happened by data_end. Needs stage history.",
    ),
    Feature(
        "days_to_next_stage",
        "label",
        "label",
        "Days from as_of until it entered next_stage; empty with next_stage.",
    ),
    Feature(
        "won_within_{horizon}d",
        "label",
        "label",
        "True if won within {horizon} days after as_of; False if known not to be (lost, won "
        "later, or still open {horizon} days on); empty if the data ends too early to say.",
    ),
)


def label_columns(
    history: pd.DataFrame | None,
    deals: Deals,
    spine: Spine,
    *,
    funnel: Funnel,
    horizons_days: tuple[int, ...],
    data_end: pd.Timestamp,
) -> dict[str, object]:
    """Label columns for every spine row (see ``CATALOG``)."""
    end = to_us(pd.DatetimeIndex([pd.Timestamp(data_end)]))[0]
    if len(spine.at.values) and spine.at.values.max() > end:
        raise ValueError(f"data_end {data_end} is before the last as_of; labels need as_of <= it")
    t = spine.at.times()
    closed = deals.closed[spine.deal]
    known = closed <= end
    won = known & deals.won[spine.deal]
    lost = known & deals.lost[spine.deal]
    out: dict[str, object] = {
        "outcome": pd.array(np.where(won, WON, np.where(lost, LOST, None)), dtype="str"),
        "days_to_close": np.where(won | lost, days(np.where(known, closed, t) - t), np.nan),
        "days_observed": days(end - t),
    }
    if history is not None:
        out.update(_next_stage(history, deals, spine, won, lost, funnel=funnel, end=end))
    still_open = closed > end
    for h in horizons_days:
        within = closed - t <= h * US_PER_DAY
        yes = won & within
        no = lost | (won & ~within) | (still_open & (t + h * US_PER_DAY <= end))
        out[f"won_within_{h}d"] = pd.arrays.BooleanArray(yes, ~(yes | no))
    return out


def _next_stage(
    history: pd.DataFrame,
    deals: Deals,
    spine: Spine,
    won: np.ndarray,
    lost: np.ndarray,
    *,
    funnel: Funnel,
    end: np.int64,
) -> dict[str, object]:
    """The first stage entered after as_of, or the close if that came first (or alone)."""
    rows = StageRows.of(history, deals, funnel)
    nxt = rows.index.first_gt(spine.deal, spine.at)
    moved_at = rows.index.time_at(nxt)
    moved = (nxt >= 0) & (moved_at <= end)
    closed_at = np.where(won | lost, deals.closed[spine.deal], NAT)
    by_move = moved & ((closed_at == NAT) | (moved_at <= closed_at))
    by_close = ~by_move & (closed_at != NAT)
    row = rows.index.rows[np.maximum(nxt, 0)] if len(rows.pos) else np.zeros(len(nxt), int)
    code = np.where(by_move, rows.pos[row] if len(rows.pos) else -1, -1)
    code = np.where(by_close, np.where(won, funnel.position(WON), funnel.position(LOST)), code)
    when = np.where(by_move, moved_at, np.where(by_close, closed_at, spine.at.times()))
    return {
        "next_stage": pd.Categorical.from_codes(code, categories=list(funnel.states)),
        "days_to_next_stage": np.where(code >= 0, days(when - spine.at.times()), np.nan),
    }
