"""Close dates that contradict the rest of a deal: before its creation, or before a later
stage row. Every fix is counted in a note that says what was found and what was done.

- A close less than a day before the creation (one of the two is a date without a time,
  or two systems stamped them) becomes the creation time.
- A close more than a day before the creation follows the mapping's
  ``deals.closed_before_created``: ``keep`` (default: the validation reports
  ``closed_before_created`` errors, and the note names the two fixes), ``clamp``
  (``closed_at`` becomes ``created_at``) or ``exclude`` (the deal is left out).
- A closed deal whose close date comes before a later *open* stage row (a deal reopened
  after a close whose close-date field was not updated) closes one second after that last
  stage row: the earliest moment the final close can have happened.
"""

from __future__ import annotations

import pandas as pd

from crm.importers.common import ImportSummary
from crm.provenance import plural
from crm.schemas import OUTCOMES

DAY = pd.Timedelta(days=1)
#: A close moved to a later stage row is put this long after it, so the history stays
#: ordered (the stage, then the outcome).
AFTER = pd.Timedelta(seconds=1)


def close_after_creation(summary: ImportSummary, deals: pd.DataFrame, rule: str) -> pd.DataFrame:
    """Apply the same-day fix and ``rule`` (keep / clamp / exclude); see module docstring."""
    deals = deals.assign(closed_at=pd.to_datetime(deals["closed_at"], utc=True))
    early = (deals["closed_at"] < deals["created_at"]).fillna(False)
    if not early.any():
        return deals
    same_day = early & (deals["created_at"] - deals["closed_at"] < DAY)
    if same_day.any():
        summary.note(
            f"closed_at set to created_at for {plural(int(same_day.sum()), 'deal')} whose close "
            f"came less than a day before their creation{_which_lacks_time(deals[same_day])}, "
            f"e.g. {_example(deals[same_day])}"
        )
        deals.loc[same_day, "closed_at"] = deals.loc[same_day, "created_at"]
    far = early & ~same_day
    if not far.any():
        return deals
    n, example = int(far.sum()), _example(deals[far])
    if rule == "clamp":
        summary.note(
            f"closed_at set to created_at for {plural(n, 'deal')} closed more than a day before "
            f"their creation (closed_before_created: clamp), e.g. {example}"
        )
        deals.loc[far, "closed_at"] = deals.loc[far, "created_at"]
    elif rule == "exclude":
        summary.leave_out(
            "deals", deals[far], "closed before created (closed_before_created: exclude)"
        )
        deals = deals[~far.to_numpy()].reset_index(drop=True)
    else:
        summary.note(
            f"{plural(n, 'deal')} closed more than a day before their creation, e.g. {example}: "
            "the validation reports them (closed_before_created). If the creation date is a "
            "migration date, set deals.closed_before_created: clamp (closed_at := created_at, "
            "counted) in the mapping; exclude leaves them out"
        )
    return deals


def close_after_last_stage(
    summary: ImportSummary, deals: pd.DataFrame, history: pd.DataFrame
) -> pd.DataFrame:
    """A closed deal whose history ends in an open stage entered after its closed_at closes
    at that stage row (see module docstring)."""
    last = history.drop_duplicates("deal_id", keep="last").set_index("deal_id")
    last = last[~last["stage"].isin(OUTCOMES)]
    when = last["entered_at"].reindex(deals["deal_id"].to_numpy()).to_numpy()
    entered = pd.Series(pd.to_datetime(when, utc=True), index=deals.index)
    closed = pd.to_datetime(deals["closed_at"], utc=True)
    stale = (deals["outcome"].notna() & (closed < entered)).fillna(False)
    if not stale.any():
        return deals
    first, n = deals[stale].iloc[0], plural(int(stale.sum()), "deal")
    summary.note(
        f"closed_at moved to just after the last stage row for {n} whose "
        "close date came before a later stage row (reopened after that close, and the close "
        f"date was not updated), e.g. deal {first['deal_id']!r}: closed "
        f"{_day(first['closed_at'])}, entered {last.loc[first['deal_id'], 'stage']!r} "
        f"{_day(entered[stale].iloc[0])}"
    )
    deals = deals.copy()
    deals.loc[stale, "closed_at"] = entered[stale] + AFTER
    return deals


def _which_lacks_time(deals: pd.DataFrame) -> str:
    midnight = {c: (deals[c] == deals[c].dt.normalize()).all() for c in ("closed_at", "created_at")}
    if midnight["closed_at"] and not midnight["created_at"]:
        return " (the close dates have no time of day; the creation dates do)"
    if midnight["created_at"] and not midnight["closed_at"]:
        return " (the creation dates have no time of day; the close dates do)"
    return ""


def _example(deals: pd.DataFrame) -> str:
    row = deals.iloc[0]
    created, closed = _day(row["created_at"]), _day(row["closed_at"])
    return f"deal {row['deal_id']!r} created {created}, closed {closed}"


def _day(value: pd.Timestamp) -> str:
    stamp = pd.Timestamp(value)
    return stamp.strftime("%Y-%m-%d %H:%M UTC") if stamp.tzinfo else str(stamp)
