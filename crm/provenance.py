"""Where rows came from, so every finding quotes the numbers a user sees.

A frame is checked by position (``RangeIndex``); :class:`Provenance` maps each position to
the CSV line number (header = line 1) or 1-based Parquet row, and remembers which cells
failed typing so later rules do not report them twice. :class:`Scope` binds a report to
one table and turns boolean masks into findings with a few example rows and a count.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from crm.report import MAX_EXAMPLES, Severity, ValidationReport

#: How many example values a message quotes.
MAX_VALUES = 3


@dataclass(frozen=True)
class Provenance:
    """User-visible row numbers, source file name and cells that failed typing.

    ``rows[i]`` is the number a user sees for frame position ``i``; ``None`` means
    1-based positions (frames built in memory). ``invalid`` maps a column to a boolean
    mask of the cells whose text could not be typed (already reported, now missing).
    """

    rows: np.ndarray | None = None
    file: str | None = None
    invalid: Mapping[str, np.ndarray] = field(default_factory=dict)

    def user_rows(self, positions: np.ndarray) -> np.ndarray:
        """Row numbers a user sees for the given frame positions."""
        positions = np.asarray(positions, dtype=np.int64)
        if self.rows is None:
            return positions + 1
        return np.asarray(self.rows)[positions]

    def invalid_mask(self, column: str, n: int) -> np.ndarray:
        """Mask of the cells of ``column`` that failed typing (all False if none)."""
        mask = self.invalid.get(column)
        return np.zeros(n, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)


@dataclass
class Scope:
    """One table of one report: adds findings located by masks or positions."""

    report: ValidationReport
    table: str
    prov: Provenance = field(default_factory=Provenance)

    def add(
        self,
        severity: Severity,
        rule: str,
        message: str,
        *,
        mask: np.ndarray | pd.Series | None = None,
        positions: Iterable[int] | None = None,
        count: int | None = None,
        column: str | None = None,
        hint: str | None = None,
    ) -> None:
        """Record a finding; rows come from ``mask`` or ordered ``positions`` (if any)."""
        rows: np.ndarray = np.empty(0, dtype=np.int64)
        if mask is not None:
            idx = np.flatnonzero(np.asarray(mask, dtype=bool))
            count = len(idx) if count is None else count
            rows = self.prov.user_rows(idx[:MAX_EXAMPLES])
        elif positions is not None:
            idx = np.fromiter(positions, dtype=np.int64)
            count = len(idx) if count is None else count
            rows = self.prov.user_rows(idx[:MAX_EXAMPLES])
        self.report.add(
            severity,
            rule,
            self.table,
            message,
            column=column,
            rows=rows.tolist(),
            count=count,
            hint=hint,
            file=self.prov.file,
        )

    def error(self, rule: str, message: str, **kw) -> None:
        self.add("error", rule, message, **kw)

    def warning(self, rule: str, message: str, **kw) -> None:
        self.add("warning", rule, message, **kw)


def examples(values: pd.Series | Iterable[object], limit: int = MAX_VALUES) -> str:
    """A few distinct values, quoted, for a message: ``'a', 'b', 'c'``."""
    seen: list[str] = []
    for v in values:
        text = str(v)
        if text not in seen:
            seen.append(text)
        if len(seen) >= limit:
            break
    return ", ".join(repr(s) for s in seen)


def value_counts_text(values: pd.Series, limit: int = 5) -> str:
    """The most frequent values with their counts: ``'Email' (12), 'Phone' (3)``."""
    counts = values.astype("str").value_counts()
    parts = [f"{v!r} ({n})" for v, n in counts.head(limit).items()]
    if len(counts) > limit:
        parts.append(f"and {len(counts) - limit} more")
    return ", ".join(parts)


def plural(n: int, word: str, verb: str = "") -> str:
    """``1 row`` / ``3 rows``; with ``verb`` (plural form) agreed: ``1 row is``/``3 rows are``."""
    if n != 1:
        return f"{n} {word}s {verb}".rstrip()
    singular = {"are": "is", "have": "has"}.get(verb, f"{verb}s" if verb else "")
    return f"{n} {word} {singular}".rstrip()
