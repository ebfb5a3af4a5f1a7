"""Where the training history starts.

By default at the first deal's creation. When the CRM logged wins only from some month on
(:func:`crm.health.late_win_logging`: almost no wins before it, many after), every earlier
snapshot teaches a model that deals never win, and the first month of logging holds the
back-filled wins of deals decided long before (all "won" within days). Both are history
the model must not learn from, so training starts one month after logging began. An
explicit ``features.start`` always wins.

What happened *after* that start is trustworthy even for a snapshot taken before it (from
the month logging began): a deal still open at the start, as recorded, was not won before
logging (back-filled wins are closed by then). Such snapshots enter late (delayed entry,
:func:`delayed_entry`): the hazard model counts only their intervals that begin at or
after the start (:mod:`models.intervals`), and their fixed-horizon and next-stage labels,
which span the untrustworthy days, are blanked. Without them a backtest a few weeks after
the start measures nothing beyond each snapshot's first week.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from crm.health import late_win_logging
from features.snapshots import snapshot_dates

#: labels that need the whole window after as_of (blanked for delayed-entry snapshots)
WINDOW_LABELS = ("next_stage", "days_to_next_stage")
WINDOW_PREFIX = "won_within_"


@dataclass(frozen=True)
class HistoryStart:
    """``start``: the first snapshot date; ``note``: why it is not the first creation date
    (None when it is); ``entry_from``: earlier snapshots from this date on enter late
    (None: none do)."""

    start: pd.Timestamp
    note: str | None = None
    entry_from: pd.Timestamp | None = None

    def training_dates(self, dates: pd.DatetimeIndex, *, freq: str) -> pd.DatetimeIndex:
        """``dates`` (from ``start`` on) after the delayed-entry snapshot dates (``freq``)."""
        if self.entry_from is None or self.entry_from >= self.start:
            return dates
        early = snapshot_dates(self.entry_from, self.start, freq)
        return early[early < self.start].append(pd.DatetimeIndex(dates))


def history_start(
    deals: pd.DataFrame, *, start: pd.Timestamp | None, after_late_wins: bool
) -> HistoryStart:
    """Where the training history starts (see the module docstring)."""
    first = deals["created_at"].min()
    if start is not None:
        return HistoryStart(start)
    late = late_win_logging(deals) if after_late_wins else None
    if late is None:
        return HistoryStart(first)
    begin = late.first_month + pd.DateOffset(months=1)
    month = late.first_month.strftime("%Y-%m")
    note = (
        f"wins seem to be logged only from {month} on ({late.wins_before} of "
        f"{late.closed_before} deals closed before were won, {late.wins_after} of "
        f"{late.closed_after} since): the history starts at {begin.date()}, after the "
        "first month of logging, where back-filled wins land (snapshots of that month count "
        "only from then on). Set features.start to choose the start yourself, or "
        "features.start_after_late_wins: false"
    )
    return HistoryStart(max(begin, first), note, entry_from=max(late.first_month, first))


def delayed_entry(labels: pd.DataFrame, *, start: pd.Timestamp) -> pd.DataFrame:
    """``labels`` with ``entry_days`` (days from as_of to ``start``, 0 from it on) when a
    snapshot is older than ``start``; for those, the labels that span the days before
    ``start`` (``won_within_*``, next stage) are blanked. Unchanged when none is older."""
    before = (labels["as_of"] < start).to_numpy(bool)
    if not before.any():
        return labels
    out = labels.copy()
    gap = (pd.Timestamp(start) - out["as_of"]).dt.total_seconds().to_numpy(float) / 86_400
    out["entry_days"] = np.clip(gap, 0.0, None)
    for column in [*WINDOW_LABELS, *(c for c in out if c.startswith(WINDOW_PREFIX))]:
        if column in out:
            out[column] = out[column].mask(before)
    return out
