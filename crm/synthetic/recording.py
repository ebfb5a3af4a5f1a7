"""How a CRM records what happened: the frame transforms of the failure scenarios.

Each function takes the typed, contract-valid frames (censored at as_of), the truth frame
(one row per deal, in the order of ``deals``) and the timeline, and returns new frames that
are still contract-valid (closed_at >= created_at, outcome with closed_at, the last stage
row of a closed deal is its outcome, nothing after as_of), the truth of the deals kept
and a one-line note of what changed. The truth's outcome and close time are never changed.
See :mod:`crm.synthetic.scenarios` for what each scenario means.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from crm.data import CRMData
from crm.schemas import OUTCOMES, WON
from crm.synthetic.scenarios import (
    BACKFILL_DAYS,
    BLANK_WHEN_OPEN_COLUMN,
    LOG_DAYS,
    LOSS_WAIT_DAYS,
    STOP_AT,
    STOPPED_COLUMNS,
    TRUNCATE_AT,
    moment_at,
)
from crm.synthetic.timeline import Timeline

Result = tuple[CRMData, pd.DataFrame, str]


def _as_of(timeline: Timeline) -> pd.Timestamp:
    return timeline.origin + pd.Timedelta(days=timeline.horizon)


def late_wins(
    data: CRMData, truth: pd.DataFrame, timeline: Timeline, rng: np.random.Generator
) -> Result:
    """Won dates only from LOG_DAYS before as_of (back-filled), losses after a fixed wait."""
    as_of = _as_of(timeline)
    log_start = (as_of - pd.Timedelta(days=LOG_DAYS)).normalize()
    deals = data.deals.reset_index(drop=True)
    true_close = truth["eventual_closed_at"].reset_index(drop=True)
    won = (truth["eventual_outcome"] == WON).to_numpy()
    backfill = log_start + pd.to_timedelta(
        np.floor(rng.random(len(deals)) * BACKFILL_DAYS * 86_400), unit="s"
    )
    waited = deals["created_at"] + pd.Timedelta(days=LOSS_WAIT_DAYS)
    recorded = true_close.mask(won & (true_close < log_start).to_numpy(), pd.Series(backfill))
    recorded = recorded.mask(~won & (true_close < waited).to_numpy(), waited)
    recorded = recorded.astype(deals["closed_at"].dtype)
    closed = (recorded <= as_of).to_numpy()
    outcome = np.where(closed, truth["eventual_outcome"].to_numpy(dtype=object), None)
    new_deals = deals.assign(
        closed_at=recorded.where(closed), outcome=pd.Series(outcome, dtype="str")
    )
    out = data.with_table("deals", new_deals)
    if data.stage_history is not None:
        history = _move_terminal_rows(data.stage_history, new_deals)
        out = out.with_table("stage_history", history)
    moved = int((won & (true_close < log_start)).sum())
    note = (
        f"won dates logged from {log_start.date()}: {moved} earlier wins back-filled; "
        f"losses recorded {LOSS_WAIT_DAYS} days after creation at the earliest"
    )
    return out, truth, note


def _move_terminal_rows(history: pd.DataFrame, deals: pd.DataFrame) -> pd.DataFrame:
    """Won/lost rows moved to the deal's recorded closed_at, dropped where it has none."""
    history = history.reset_index(drop=True)
    terminal = history["stage"].isin(OUTCOMES).to_numpy()
    pos = pd.Index(deals["deal_id"]).get_indexer(history["deal_id"])
    closed_at = deals["closed_at"].iloc[pos].reset_index(drop=True)
    keep = ~terminal | closed_at.notna().to_numpy()
    entered = history["entered_at"].mask(terminal, closed_at)
    return history.assign(entered_at=entered)[keep].reset_index(drop=True)


def left_truncated(
    data: CRMData, truth: pd.DataFrame, timeline: Timeline, rng: np.random.Generator
) -> Result:
    """The export starts at TRUNCATE_AT of the period; earlier deals only if still open."""
    start = moment_at(timeline, TRUNCATE_AT)
    deals = data.deals
    early = (deals["created_at"] < start).to_numpy()
    done = (deals["closed_at"] <= start).fillna(False).to_numpy(dtype=bool)
    keep = ~(early & done)
    kept = deals[keep].reset_index(drop=True)
    clamped = kept["created_at"] < start
    kept["created_at"] = kept["created_at"].mask(clamped, start)
    out = data.with_table("deals", kept)
    ids = kept["deal_id"]
    if data.stage_history is not None:
        out = out.with_table("stage_history", _cut_history(data.stage_history, ids, start))
    if data.touchpoints is not None:
        touches = data.touchpoints
        known = touches["deal_id"].isna() | touches["deal_id"].isin(ids)
        late = touches["occurred_at"] >= start
        out = out.with_table("touchpoints", touches[known & late].reset_index(drop=True))
    note = (
        f"export starts {start.date()}: {int(clamped.sum())} deals open then, created_at set "
        f"to it; {int((early & done).sum())} deals closed before it left out"
    )
    return out, truth[keep].reset_index(drop=True), note


def _cut_history(history: pd.DataFrame, ids: pd.Series, start: pd.Timestamp) -> pd.DataFrame:
    """Rows of the kept deals; rows before ``start`` give way to the stage held at start.

    ``history`` is sorted by deal and time, as the generator writes it.
    """
    rows = history[history["deal_id"].isin(ids)].reset_index(drop=True)
    deal = rows["deal_id"].to_numpy()
    before = (rows["entered_at"] < start).to_numpy()
    last_before = before.copy()
    last_before[:-1] &= ~((deal[1:] == deal[:-1]) & before[1:])
    on_start = rows.loc[(rows["entered_at"] == start).to_numpy(), "deal_id"]
    last_before &= ~rows["deal_id"].isin(on_start).to_numpy()
    rows["entered_at"] = rows["entered_at"].mask(last_before, start)
    return rows[~before | last_before].reset_index(drop=True)


def field_stops(
    data: CRMData, truth: pd.DataFrame, timeline: Timeline, rng: np.random.Generator
) -> Result:
    """STOPPED_COLUMNS blank for deals created from STOP_AT of the period on."""
    stop = moment_at(timeline, STOP_AT)
    deals = data.deals.copy()
    after = (deals["created_at"] >= stop).to_numpy()
    columns = [c for c in STOPPED_COLUMNS if c in deals]
    for column in columns:
        deals[column] = deals[column].mask(after)
    note = f"{', '.join(columns)} blank for the {int(after.sum())} deals created from {stop.date()}"
    return data.with_table("deals", deals), truth, note


def blank_when_open(
    data: CRMData, truth: pd.DataFrame, timeline: Timeline, rng: np.random.Generator
) -> Result:
    """BLANK_WHEN_OPEN_COLUMN blank exactly for the deals open in the recorded data."""
    deals = data.deals.copy()
    is_open = deals["outcome"].isna().to_numpy()
    deals[BLANK_WHEN_OPEN_COLUMN] = deals[BLANK_WHEN_OPEN_COLUMN].mask(is_open)
    note = f"{BLANK_WHEN_OPEN_COLUMN} blank for the {int(is_open.sum())} open deals"
    return data.with_table("deals", deals), truth, note


Transform = Callable[[CRMData, pd.DataFrame, Timeline, np.random.Generator], tuple]


def transform_frames(
    names: tuple[str, ...],
    data: CRMData,
    truth: pd.DataFrame,
    *,
    timeline: Timeline,
    rng: np.random.Generator,
) -> tuple[CRMData, pd.DataFrame, dict[str, str]]:
    """The recorded frames of the scenarios in ``names`` and the truth of the deals kept.

    ``truth`` gains ``created_at_true`` (the real creation, before any clamping); its
    outcome and close columns stay the real, uncut ones.
    """
    truth = truth.assign(created_at_true=data.deals["created_at"].to_numpy())
    steps: Mapping[str, Transform] = {
        "late-wins": late_wins,
        "left-truncated": left_truncated,
        "field-stops": field_stops,
        "blank-when-open": blank_when_open,
    }
    notes: dict[str, str] = {}
    for name, step in steps.items():
        if name in names:
            data, truth, notes[name] = step(data, truth, timeline, rng)
    return data, truth, notes
