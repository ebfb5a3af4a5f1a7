"""When the data ends, and what lies beyond it.

The data's end (when it was extracted) is the reference of every label and of the
scoring date, so one far-future timestamp (a touchpoint typed as 2099, a ``9999-12-31``
placeholder) must not move it. :func:`plausible_end` takes the given extraction date, else
the latest event not after the clock; :func:`exclude_after` removes what is stamped later,
counting it per table and column so the user is told, never silently.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from crm.data import CRMData
from features.snapshots import latest_timestamp

KEYS = {
    "deals": ("deal_id",),
    "accounts": ("account_id",),
    "stage_history": ("deal_id",),
    "touchpoints": ("touchpoint_id", "deal_id", "account_id"),
}  # the columns that name a row in a message, first filled one wins
STAMPS = (("accounts", "created_at"), ("stage_history", "entered_at"),
          ("touchpoints", "occurred_at"))  # fmt: skip


class DataEndError(ValueError):
    """The data's end cannot be set: given after the clock, or no event before it."""


@dataclass(frozen=True)
class Excluded:
    """``rows`` of ``table`` were dropped or changed because of ``column``; ``what`` says
    how, ``example`` names one of them."""

    table: str
    column: str
    rows: int
    what: str
    example: str

    def message(self) -> str:
        return f"{self.table}.{self.column}: {self.rows:,} row(s) {self.what}, e.g. {self.example}"


def plausible_end(data: CRMData, *, given: pd.Timestamp | None, clock: pd.Timestamp):
    """The data's end: ``given`` (the extraction date) if set, else the latest event at or
    before ``clock``. ``DataEndError`` if ``given`` is after the clock or nothing is before it.
    """
    if given is not None:
        if given > clock:
            raise DataEndError(
                f"features.data_end {given} is after the clock {clock} (validate.as_of, "
                "else now): an extraction cannot lie in the future"
            )
        return given
    try:
        return latest_timestamp(data, not_after=clock)
    except ValueError:
        raise DataEndError(f"the data has no event at or before the clock {clock}") from None


def exclude_after(data: CRMData, end: pd.Timestamp) -> tuple[CRMData, list[Excluded]]:
    """The data as it stood at ``end``, and what was removed (per table and column).

    Deals created later are removed with their stage and touch rows; a deal closed later
    was still open at ``end``, so its close (``closed_at``, ``outcome``) is cleared; stage
    entries, touches and accounts stamped later are removed.
    """
    excluded: list[Excluded] = []
    deals = data.deals
    late = _after(deals["created_at"], end)
    if late.any():
        excluded.append(_excluded("deals", "created_at", deals, late, f"after {end}: excluded"))
        deals = deals[~late].reset_index(drop=True)
    if "closed_at" in deals:
        closed_late = _after(deals["closed_at"], end)
        if closed_late.any():
            what = f"closed after {end}: taken as still open then"
            excluded.append(_excluded("deals", "closed_at", deals, closed_late, what))
            deals = deals.copy()
            deals.loc[closed_late, "closed_at"] = pd.NaT
            if "outcome" in deals:
                deals.loc[closed_late, "outcome"] = pd.NA
    out = data.with_table("deals", deals)
    kept = set(deals["deal_id"].astype("str"))
    for table, column in STAMPS:
        frame = data.table(table)
        if frame is None:
            continue
        drop = _after(frame[column], end)
        if drop.any():
            excluded.append(_excluded(table, column, frame, drop, f"after {end}: excluded"))
        if table != "accounts" and late.any() and "deal_id" in frame:
            orphan = ~drop & frame["deal_id"].notna().to_numpy() & ~frame["deal_id"].astype(
                "str").isin(kept).to_numpy()  # fmt: skip
            if orphan.any():
                what = "of deals created after the data's end: excluded"
                excluded.append(_excluded(table, "deal_id", frame, orphan, what))
            drop = drop | orphan
        if drop.any():
            out = out.with_table(table, frame[~drop].reset_index(drop=True))
    return out, excluded


def _after(values: pd.Series, end: pd.Timestamp):
    return (values > end).fillna(False).to_numpy(bool)


def _excluded(table: str, column: str, frame: pd.DataFrame, mask, what: str) -> Excluded:
    row = frame[mask].iloc[0]
    named = [k for k in KEYS[table] if k in frame and not pd.isna(row[k])]
    who = f"{named[0]} {row[named[0]]}" if named else "a row"
    when = f" at {row[column]}" if column not in KEYS[table] else ""
    return Excluded(table, column, int(mask.sum()), what, f"{who}{when}")
