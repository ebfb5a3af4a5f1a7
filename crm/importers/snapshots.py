"""Stage history from periodic snapshot reports.

A snapshot report has one row per deal per snapshot date, with the deal's stage at that
moment (Salesforce reporting snapshots, a weekly pipeline export kept in a folder...).
A stage change is detected between consecutive snapshots of a deal, and dated at the
first snapshot that shows the new stage: that is when it was *known*, so the history
never claims knowledge earlier than the reports had it. Stage names are mapped before
comparing, so a stage renamed between two snapshots ("Demo Scheduled" -> "Demo booked",
both mapped to ``meeting``) is not a change.

A deal that disappears from the reports before the last snapshot without reaching
``won``/``lost`` is counted; ``vanished="lost"`` closes it as lost at the first snapshot
it is missing from, ``"open"`` (default) keeps it open.
"""

from __future__ import annotations

from typing import Literal

import pandas as pd

from crm.importers.common import DERIVED, LINE, SRC, ImportSummary
from crm.provenance import plural
from crm.schemas import LOST, OUTCOMES

TABLE = "stage_history"


def history_from_snapshots(
    rows: pd.DataFrame,
    summary: ImportSummary,
    *,
    vanished: Literal["open", "lost"] = "open",
) -> pd.DataFrame:
    """``rows`` has deal_id, stage (already mapped), snapshot_at (UTC) and SRC/LINE.

    Returns stage rows (deal_id, stage, entered_at, SRC, LINE): one per detected change.
    """
    for column in ("deal_id", "stage", "snapshot_at"):
        missing = rows[column].isna()
        summary.leave_out(TABLE, rows[missing], f"no {column} (blank or unreadable)")
        rows = rows[~missing]
    rows = rows.sort_values(["deal_id", "snapshot_at", LINE], kind="stable")
    twice = rows.duplicated(["deal_id", "snapshot_at"], keep="last")
    summary.leave_out(
        TABLE, rows[twice], "repeated deal in the same snapshot (the later line was kept)"
    )
    rows = rows[~twice]
    previous = rows.groupby("deal_id", sort=False)["stage"].shift()
    same = rows["stage"].eq(previous)
    summary.leave_out(TABLE, rows[same], "no stage change since the deal's previous snapshot")
    changes = rows[~same].rename(columns={"snapshot_at": "entered_at"})
    changes = changes[["deal_id", "stage", "entered_at", SRC, LINE]]
    gone = _vanished(rows)
    if len(gone):
        last = rows["snapshot_at"].max()
        if vanished == "lost":
            summary.note(
                f"{plural(len(gone), 'deal')} vanished from the snapshots before the last one "
                f"({last.isoformat()}) without reaching won/lost: closed as lost at the first "
                "snapshot they were missing from (vanished: lost)"
            )
            lost = pd.DataFrame(
                {
                    "deal_id": gone.index,
                    "stage": LOST,
                    "entered_at": gone.to_numpy(),
                    SRC: DERIVED,
                    LINE: 0,
                }
            )
            changes = pd.concat([changes, lost], ignore_index=True)
        else:
            summary.note(
                f"{plural(len(gone), 'deal')} vanished from the snapshots before the last one "
                f"({last.isoformat()}) without reaching won/lost: kept open (set vanished: lost "
                "to close them as lost when they disappear)"
            )
    return changes.reset_index(drop=True)


def _vanished(rows: pd.DataFrame) -> pd.Series:
    """deal_id -> the first snapshot date a non-closed deal was missing from."""
    dates = pd.Series(sorted(rows["snapshot_at"].unique()))
    last = rows.drop_duplicates("deal_id", keep="last").set_index("deal_id")
    open_ = last[~last["stage"].isin(OUTCOMES) & (last["snapshot_at"] < dates.iloc[-1])]
    if open_.empty:
        return pd.Series([], dtype="datetime64[us, UTC]")
    position = dates.searchsorted(open_["snapshot_at"], side="right")
    return pd.Series(dates.iloc[position].to_numpy(), index=open_.index)
