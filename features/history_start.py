"""Where the training history starts.

By default at the first deal's creation. When the CRM logged wins only from some month on
(:func:`crm.health.late_win_logging`: almost no wins before it, many after), every earlier
snapshot teaches a model that deals never win, and the first month of logging holds the
back-filled wins of deals decided long before (all "won" within days). Both are history
the model must not learn from, so training starts one month after logging began. An
explicit ``features.start`` always wins.
"""

from __future__ import annotations

import pandas as pd

from crm.health import late_win_logging


def history_start(
    deals: pd.DataFrame, *, start: pd.Timestamp | None, after_late_wins: bool
) -> tuple[pd.Timestamp, str | None]:
    """(first snapshot date, why it is not the first creation date, or None)."""
    first = deals["created_at"].min()
    if start is not None:
        return start, None
    late = late_win_logging(deals) if after_late_wins else None
    if late is None:
        return first, None
    begin = late.first_month + pd.DateOffset(months=1)
    month = late.first_month.strftime("%Y-%m")
    note = (
        f"wins seem to be logged only from {month} on ({late.wins_before} of "
        f"{late.closed_before} deals closed before were won, {late.wins_after} of "
        f"{late.closed_after} since): the history starts at {begin.date()}, after the "
        "first month of logging, where back-filled wins land. Set features.start to "
        "choose the start yourself, or features.start_after_late_wins: false"
    )
    return max(begin, first), note
