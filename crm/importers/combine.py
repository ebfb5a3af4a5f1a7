"""Several rows of one key become one row: the combine rules of every importer.

A snapshot report repeats a deal once per snapshot, a pipeline export once per product
line, an event log once per event. The rows of one ``deal_id`` (or ``account_id``) are put
in time order (the section's ``order_by`` column where given, else ``created_at``, then
the line in the file) and each column is combined by its rule:

- ``first`` / ``last``: the first / last non-blank value in time order;
- ``min`` / ``max``: the smallest / largest value (earliest / latest for dates);
- ``sum``: the total (blank when every value is blank), e.g. product-line amounts;
- ``count``: how many rows have a value, e.g. the number of line items.

Defaults (:data:`COMBINE_DEFAULTS`): ``created_at`` min (the deal existed from its first
sighting), ``outcome`` and ``closed_at`` last (the deal's latest status is its status: a
deal lost in October and won in June is won), everything else first (what was known
earliest, so a later edit of the amount does not leak into features). A row whose status
says "open" counts as a value for ``outcome``, so the latest row's status wins even when
it reopened the deal.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from crm.importers.common import LINE, OPEN, ORDER, SRC, ImportSummary
from crm.importers.rows import combine_values
from crm.schemas import OUTCOMES

#: Rules for columns a mapping does not give one for; any other column: ``first``.
COMBINE_DEFAULTS = {"created_at": "min", "outcome": "last", "closed_at": "last"}


def combine_rows(
    summary: ImportSummary,
    table: str,
    frame: pd.DataFrame,
    key: str,
    rules: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """One row per ``key`` (see module docstring); repeats are counted as combined."""
    rules = {**COMBINE_DEFAULTS, **(rules or {})}
    order = [c for c in (ORDER, "created_at", LINE) if c in frame.columns]
    frame = frame.sort_values(order, kind="stable") if order else frame
    repeat = frame.duplicated(key, keep="first").to_numpy()
    aggregating = any(rules.get(c) in ("sum", "count") for c in frame.columns)
    if repeat.any():
        summary.combine(table, frame[repeat])
    if repeat.any() or aggregating:
        grouped = frame.groupby(key, sort=False, dropna=False)
        combined = grouped.first()
        for column in combined.columns:
            rule = rules.get(column, "first")
            if column not in (SRC, LINE) and rule != "first":
                combined[column] = combine_values(grouped[column], rule)
        frame = combined.reset_index()[list(frame.columns)]
    if "outcome" in frame.columns:
        outcome = frame["outcome"]
        frame = frame.assign(outcome=outcome.where(outcome.isin(OUTCOMES)))
    return frame.reset_index(drop=True)


def open_marker(outcome: pd.Series, status: pd.Series) -> pd.Series:
    """``outcome`` with :data:`OPEN` where the status column has a value that is not won
    or lost (so that combining keeps the latest status, open included)."""
    return outcome.mask(outcome.isna() & status.notna(), OPEN)
