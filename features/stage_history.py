"""Stage family: where the deal stands in the funnel at as_of and how it got there.

Only stage rows with ``entered_at <= as_of`` are used, so the ``won``/``lost`` rows of a
deal that closes later, and any later move, are invisible at as_of. Rows are sorted by
(deal, entered_at, funnel position) and consecutive repeats of the same stage are
collapsed, so a "change" is always a move to a different stage.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from crm.schemas import Funnel
from features.entry import Feature, column_name
from features.history import known_time, smoothed_rate
from features.point_in_time import (
    NAT,
    US_PER_DAY,
    At,
    EventIndex,
    days,
    days_since,
    index_in,
    take,
    to_us,
)
from features.snapshots import Deals, Spine

#: Entry ages are binned by whole days up to this many; older entries share the last bin.
_MAX_AGE_DAYS = 1095

CATALOG = (
    Feature("stage__current", "stage", "category", "The stage the deal is in at as_of."),
    Feature(
        "stage__position",
        "stage",
        "number",
        "0-based position of the current stage in the funnel (lead = 0).",
    ),
    Feature("stage__days_in_current", "stage", "number", "Days since it entered that stage."),
    Feature("stage__n_changes", "stage", "number", "Stage moves so far (any direction)."),
    Feature("stage__n_regressions", "stage", "number", "Moves back to an earlier stage."),
    Feature(
        "stage__n_skipped",
        "stage",
        "number",
        "Open stages jumped over by forward moves (lead -> meeting skips 1).",
    ),
    Feature(
        "stage__days_spent_{stage}",
        "stage",
        "number",
        "Days spent in <stage> in earlier, finished stays (0 if never there; the current "
        "stay is stage__days_in_current).",
    ),
    Feature(
        "stage__days_older_than_typical",
        "stage",
        "number",
        "Deal age minus the median age at which deals entered the current stage, over all "
        "entries known at as_of (whole days). Positive = older than usual for this stage.",
    ),
    Feature(
        "stage__win_rate",
        "stage",
        "number",
        "Win rate of deals that entered the current stage and closed on or before as_of, "
        "shrunk towards the overall win rate then.",
    ),
)


@dataclass(frozen=True)
class StageRows:
    """Stage history as changes, sorted by (deal, entered_at, position); one entry per row.

    ``first`` marks each deal's first row; ``index`` finds a deal's latest row at a time.
    """

    deal: np.ndarray
    pos: np.ndarray
    entered: np.ndarray
    first: np.ndarray
    index: EventIndex

    @classmethod
    def of(cls, history: pd.DataFrame, deals: Deals, funnel: Funnel) -> StageRows:
        deal = deals.codes(history["deal_id"])
        pos = index_in(history["stage"], list(funnel.states))
        entered = to_us(history["entered_at"])
        keep = (deal >= 0) & (pos >= 0) & (entered != NAT)
        deal, pos, entered = deal[keep], pos[keep], entered[keep]
        order = np.lexsort((pos, entered, deal))
        deal, pos, entered = deal[order], pos[order], entered[order]
        first = _run_starts(deal)
        change = first | _run_starts(pos)
        deal, pos, entered, first = deal[change], pos[change], entered[change], first[change]
        return cls(deal, pos, entered, first, EventIndex(deal, entered, n_groups=len(deals)))

    def cumulative(self, values: np.ndarray) -> np.ndarray:
        """Running sum of ``values`` (int64, rows or rows x k) within each deal."""
        total = np.cumsum(values, axis=0)
        seg = np.cumsum(self.first) - 1
        base = (total - values)[np.flatnonzero(self.first)]
        return total - base[seg]


def _run_starts(values: np.ndarray) -> np.ndarray:
    """True where a value differs from the one before it (and at the first element)."""
    out = np.ones(len(values), dtype=bool)
    out[1:] = values[1:] != values[:-1]
    return out


def stage_features(
    history: pd.DataFrame,
    deals: Deals,
    spine: Spine,
    *,
    funnel: Funnel,
    prior_strength: float,
    overall: np.ndarray,
) -> dict[str, object]:
    """Stage columns for every spine row (see ``CATALOG``)."""
    rows = StageRows.of(history, deals, funnel)
    cur = rows.index.last_le(spine.deal, spine.at)
    row = take(rows.index.rows, cur, -1).astype(np.int64)
    pos = take(rows.pos, row, -1).astype(np.int64)
    out: dict[str, object] = {
        "stage__current": pd.Categorical.from_codes(pos, categories=list(funnel.states)),
        "stage__position": take(rows.pos, row),
        "stage__days_in_current": days_since(spine.at, rows.index.time_at(cur)),
    }
    out.update(_move_counts(rows, row, funnel))
    out.update(_days_per_stage(rows, row, funnel))
    age = days(spine.at.times() - deals.created[spine.deal])
    typical = typical_entry_age(rows, deals, spine.at, funnel)
    n_open = len(funnel.stages)
    open_pos = (pos >= 0) & (pos < n_open)
    out["stage__days_older_than_typical"] = np.where(
        open_pos, age - typical[np.minimum(np.maximum(pos, 0), n_open - 1), spine.at.index], np.nan
    )
    out["stage__win_rate"] = _stage_win_rate(
        rows, deals, pos, spine.at, funnel=funnel, prior_strength=prior_strength, overall=overall
    )
    return out


def _move_counts(rows: StageRows, row: np.ndarray, funnel: Funnel) -> dict[str, np.ndarray]:
    """Changes, regressions and skipped stages up to and including each current row."""
    prev = np.concatenate([[-1], rows.pos[:-1]]) if len(rows.pos) else rows.pos
    n_open = len(funnel.stages)
    moved = ~rows.first
    forward_open = moved & (rows.pos < n_open) & (prev < n_open) & (rows.pos > prev)
    counts = {
        "stage__n_changes": moved.astype(np.int64),
        "stage__n_regressions": (moved & (rows.pos < prev)).astype(np.int64),
        "stage__n_skipped": np.where(forward_open, rows.pos - prev - 1, 0),
    }
    return {name: take(rows.cumulative(v), row, 0.0) for name, v in counts.items()}


def _days_per_stage(rows: StageRows, row: np.ndarray, funnel: Funnel) -> dict[str, np.ndarray]:
    """Days in each open stage over finished stays: the stays before the current row."""
    n_open = len(funnel.stages)
    has_next = np.append(~rows.first[1:], False)[: len(rows.first)]  # it left this stage
    stay = np.zeros((len(rows.pos), n_open), dtype=np.int64)
    finished = np.flatnonzero(has_next & (rows.pos < n_open))
    stay[finished, rows.pos[finished]] = rows.entered[finished + 1] - rows.entered[finished]
    cum = rows.cumulative(stay)
    first = take(rows.first, row, 1.0) > 0
    prior_row = np.where(first, -1, row - 1)
    return {
        f"stage__days_spent_{column_name(stage)}": take(cum[:, i], prior_row, 0.0) / US_PER_DAY
        for i, stage in enumerate(funnel.stages)
    }


def typical_entry_age(rows: StageRows, deals: Deals, at: At, funnel: Funnel) -> np.ndarray:
    """Median whole-day age at entry, per (open stage, as-of date), over entries known then.

    An entry is known at ``max(entered_at, deal created_at)``. Built as day-binned
    histograms accumulated over the sorted dates, so every date costs one cumulative sum.
    Returns an (open stages x dates) float array, NaN where no entry was known yet.
    """
    n_open, n_dates = len(funnel.stages), len(at.values)
    entry = rows.pos < n_open
    created = deals.created[rows.deal[entry]]
    age = (rows.entered[entry] - created) // US_PER_DAY
    age = np.clip(age, 0, _MAX_AGE_DAYS)
    date = np.searchsorted(at.values, known_time(rows.entered[entry], created), "left")
    bins = _MAX_AGE_DAYS + 1
    flat = (rows.pos[entry] * (n_dates + 1) + date) * bins + age
    hist = np.bincount(flat, minlength=n_open * (n_dates + 1) * bins)
    hist = hist.reshape(n_open, n_dates + 1, bins)[:, :n_dates].cumsum(axis=1).cumsum(axis=2)
    n = hist[:, :, -1]
    median = np.argmax(hist > ((n - 1) // 2)[:, :, None], axis=2).astype(np.float64)
    return np.where(n > 0, median, np.nan)


def _stage_win_rate(
    rows: StageRows,
    deals: Deals,
    pos: np.ndarray,
    at: At,
    *,
    funnel: Funnel,
    prior_strength: float,
    overall: np.ndarray,
) -> np.ndarray:
    """Smoothed win rate of deals that entered stage ``pos`` and closed by each as_of.

    A (deal, stage) pair is known once the deal had entered the stage and closed.
    """
    n_states = np.int64(len(funnel.states))
    _, first_entry = np.unique(rows.deal * n_states + rows.pos, return_index=True)
    d, p, e = rows.deal[first_entry], rows.pos[first_entry], rows.entered[first_entry]
    closed = deals.close_time(np.ones(len(deals), dtype=bool))[d]
    known = known_time(closed, e, deals.created[d])
    n_groups = int(n_states)
    won = EventIndex(p, np.where(deals.won[d], known, NAT), n_groups=n_groups)
    lost = EventIndex(p, np.where(deals.lost[d], known, NAT), n_groups=n_groups)
    w = won.count_le(pos, at).astype(np.float64)
    lo = lost.count_le(pos, at).astype(np.float64)
    rate = smoothed_rate(w, lo, overall, prior_strength=prior_strength)
    return np.where(pos >= 0, rate, np.nan)
