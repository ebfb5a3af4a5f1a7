"""Stage history from periodic snapshot reports.

A snapshot report has one row per deal per snapshot, with the deal's stage at that moment
(Salesforce reporting snapshots, a weekly pipeline export kept in a folder...).

**What a snapshot is.** Without ``snapshot_every`` each distinct ``snapshot_at`` value is
one snapshot. With ``snapshot_every: day`` (or ``week``, Monday to Sunday) the rows whose
``snapshot_at`` falls on one calendar day (week) in the mapping's timezone are one
snapshot, dated at the latest timestamp among them (when the snapshot was complete), so a
report written over a few minutes, or stamped with the time each row was written, is still
one snapshot. A deal seen twice in one snapshot keeps its later row.

**Changes.** A stage change is detected between consecutive snapshots of a deal, and
dated at the first snapshot that shows the new stage: that is when it was *known*, so the
history never claims knowledge earlier than the reports had it. Stage names are mapped
before comparing, so a renamed stage ("Demo Scheduled" -> "Demo booked", both mapped to
``meeting``) is not a change. A deal shown ``lost`` and later in an open stage is a
reopened deal: both rows are kept.

**Partial snapshots.** A snapshot holding fewer than ``partial_below`` (default 0.5) times
the median number of deals of the (up to 5) snapshots before it is *partial*: an export cut
short, a filter changed for one run. Its rows still give stage changes, but a deal missing
from it is not missing from the pipeline: only complete snapshots count for "vanished".

**Vanished deals.** A deal that is missing from a later complete snapshot without having
reached ``won``/``lost`` is counted; ``vanished="lost"`` closes it as lost at the first
complete snapshot it is missing from, ``"open"`` (default) keeps it open.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from crm.importers.common import DERIVED, LINE, SRC, ImportSummary
from crm.provenance import plural
from crm.schemas import LOST, OUTCOMES

TABLE = "stage_history"
#: How many earlier snapshots the partial-snapshot test compares against.
PARTIAL_WINDOW = 5


def history_from_snapshots(
    rows: pd.DataFrame,
    summary: ImportSummary,
    *,
    vanished: Literal["open", "lost"] = "open",
    every: Literal["day", "week"] | None = None,
    timezone: str = "UTC",
    partial_below: float = 0.5,
) -> pd.DataFrame:
    """``rows`` has deal_id, stage (already mapped), snapshot_at (UTC) and SRC/LINE.

    Returns stage rows (deal_id, stage, entered_at, SRC, LINE): one per detected change,
    plus a derived ``lost`` row per vanished deal when ``vanished="lost"``.
    """
    for column in ("deal_id", "stage", "snapshot_at"):
        missing = rows[column].isna()
        summary.leave_out(TABLE, rows[missing], f"no {column} (blank or unreadable)")
        rows = rows[~missing]
    rows = _recognise(rows, summary, every, timezone)
    rows = rows.sort_values(["deal_id", "snapshot_at", "_taken", LINE], kind="stable")
    twice = rows.duplicated(["deal_id", "snapshot_at"], keep="last")
    summary.leave_out(
        TABLE,
        rows[twice],
        "another row of the deal in the same snapshot (a product line or a repeat; the "
        "deal's last row in the snapshot was used)",
    )
    rows = rows[~twice].drop(columns=["_taken"])
    previous = rows.groupby("deal_id", sort=False)["stage"].shift()
    same = rows["stage"].eq(previous)
    summary.leave_out(TABLE, rows[same], "no stage change since the deal's previous snapshot")
    changes = rows[~same].rename(columns={"snapshot_at": "entered_at"})
    changes = changes[["deal_id", "stage", "entered_at", SRC, LINE]]
    complete = _complete_snapshots(rows, summary, partial_below)
    gone = _vanished(rows, complete)
    if len(gone):
        changes = _report_vanished(changes, gone, complete, summary, vanished)
    return changes.reset_index(drop=True)


def _recognise(
    rows: pd.DataFrame, summary: ImportSummary, every: str | None, timezone: str
) -> pd.DataFrame:
    """``snapshot_at`` -> the snapshot's time; the row's own time kept in ``_taken``."""
    rows = rows.assign(_taken=rows["snapshot_at"])
    if rows.empty:
        return rows
    local = rows["snapshot_at"].dt.tz_convert(timezone)
    day = local.dt.normalize()
    if every is None:
        per_day = rows.groupby(day)["snapshot_at"].nunique()
        if (per_day > 1).any():
            summary.note(
                f"snapshot_at has {rows['snapshot_at'].nunique():,} distinct times on "
                f"{len(per_day):,} days; each distinct time is one snapshot. If the report was "
                "taken once a day or once a week, set snapshot_every: day (or week) on the "
                "snapshots section"
            )
        return rows
    bucket = day if every == "day" else day - pd.to_timedelta(local.dt.day_of_week, unit="D")
    stamp = rows.groupby(bucket.to_numpy())["snapshot_at"].transform("max")
    return rows.assign(snapshot_at=stamp.to_numpy())


def _complete_snapshots(
    rows: pd.DataFrame, summary: ImportSummary, partial_below: float
) -> pd.Series:
    """Sorted snapshot times; value True where the snapshot is complete (not partial)."""
    sizes = rows.groupby("snapshot_at").size().sort_index()
    before = sizes.shift().rolling(PARTIAL_WINDOW, min_periods=1).median()
    partial = (sizes < partial_below * before).fillna(False)
    total = len(sizes)
    if partial.any():
        shown = [
            f"{when.date()} ({sizes[when]:,} deals against a median of {before[when]:,.0f})"
            for when in sizes.index[partial.to_numpy()][:5]
        ]
        more = int(partial.sum()) - len(shown)
        summary.note(
            f"{plural(int(partial.sum()), 'partial snapshot')} of {total:,}: "
            f"{', '.join(shown)}{f' and {more} more' if more > 0 else ''}: fewer than "
            f"{partial_below:.0%} of the deals of the snapshots before (partial_below). Their "
            "rows give stage changes, but deals missing from them are not treated as vanished"
        )
    return ~partial


def _vanished(rows: pd.DataFrame, complete: pd.Series) -> pd.Series:
    """deal_id -> the first complete snapshot a non-closed deal was missing from."""
    full = pd.Series(complete.index[complete.to_numpy()])
    last = rows.drop_duplicates("deal_id", keep="last").set_index("deal_id")
    open_ = last[~last["stage"].isin(OUTCOMES)]
    if open_.empty or full.empty:
        return pd.Series([], dtype="datetime64[us, UTC]")
    position = full.searchsorted(open_["snapshot_at"], side="right")
    later = position < len(full)
    return pd.Series(full.iloc[position[later]].to_numpy(), index=open_.index[later])


def _report_vanished(
    changes: pd.DataFrame,
    gone: pd.Series,
    complete: pd.Series,
    summary: ImportSummary,
    vanished: str,
) -> pd.DataFrame:
    last = complete.index[np.flatnonzero(complete.to_numpy())[-1]]
    head = (
        f"{plural(len(gone), 'deal')} vanished from the snapshots (missing from a complete "
        f"snapshot after their last one, up to {last.date()}) without reaching won/lost"
    )
    if vanished != "lost":
        summary.note(
            f"{head}: kept open (set vanished: lost to close them as lost when they disappear, "
            "if the report lists every open deal)"
        )
        return changes
    summary.note(f"{head}: closed as lost at the first snapshot they were missing from")
    lost = pd.DataFrame(
        {"deal_id": gone.index, "stage": LOST, "entered_at": gone.to_numpy(), SRC: DERIVED, LINE: 0}
    )
    return pd.concat([changes, lost], ignore_index=True)
