"""What every importer shares: the input error, and the summary that accounts for every row.

Rows carry two hidden columns while they travel through an importer: :data:`SRC` (the
input file they came from) and :data:`LINE` (the line a user sees in that file, header =
line 1). Whenever rows are dropped, :meth:`ImportSummary.leave_out` records them under a
reason; when several rows become one (the rows of one deal in a snapshot report),
:meth:`ImportSummary.combine` records that; at the end :meth:`ImportSummary.landed` counts
what reached each contract table. So for every input and table,
``read = landed + combined + left out``: nothing is dropped silently.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from crm.data import CRMData
from crm.schemas import Funnel

#: Hidden columns: the input file a row came from and its line number there.
SRC = "__src__"
LINE = "__line__"
#: Hidden column: a row's time for combining the rows of one key (``deals.order_by``).
ORDER = "__order__"
#: Outcome of a row whose status says the deal is open (kept while rows are combined, so
#: that the latest row's status wins; blank afterwards).
OPEN = "open"
#: ``SRC`` of rows an importer made up (e.g. a ``won`` stage row at a deal's closed_at).
DERIVED = "(derived by the importer)"
#: Pseudo-table of rows that fed no table at all (e.g. event-log activities not mapped).
NOWHERE = "(not imported)"
_EXAMPLE_LINES = 5


class ImportInputError(Exception):
    """The input cannot be imported: a missing file or column, undeclared date order...

    The message names the file and column and says what to change; the CLI prints it
    without a traceback.
    """


@dataclass
class LeftOut:
    """Rows left out for one reason: how many, and the first few line numbers."""

    count: int = 0
    lines: list[int] = field(default_factory=list)

    def add(self, lines: Iterable[int]) -> None:
        lines = list(lines)
        self.count += len(lines)
        room = _EXAMPLE_LINES - len(self.lines)
        if room > 0:
            self.lines.extend(int(x) for x in lines[:room] if x > 0)


@dataclass
class Flow:
    """What became of one input's rows in one table."""

    landed: int = 0
    combined: int = 0
    left_out: dict[str, LeftOut] = field(default_factory=dict)

    @property
    def left_out_count(self) -> int:
        return sum(x.count for x in self.left_out.values())


@dataclass
class ImportSummary:
    """Per input file: rows read; per target table: rows landed, combined, left out (why).

    ``unmapped`` holds source names (stages, channels, activities) that no map covered,
    with their row counts, so the summary can say how to map them.
    """

    importer: str
    read: dict[str, int] = field(default_factory=dict)
    flows: dict[str, dict[str, Flow]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    unmapped: dict[str, dict[str, int]] = field(default_factory=dict)
    written: dict[str, int] = field(default_factory=dict)

    # ----------------------------------------------------------------- recording

    def record_read(self, source: str, rows: int) -> None:
        self.read[source] = self.read.get(source, 0) + rows
        self.flows.setdefault(source, {})

    def flow(self, source: str, table: str) -> Flow:
        return self.flows.setdefault(source, {}).setdefault(table, Flow())

    def leave_out(self, table: str, rows: pd.DataFrame, reason: str) -> None:
        """Record ``rows`` (carrying SRC/LINE) as not landing in ``table`` because ``reason``."""
        if len(rows) == 0:
            return
        for source, lines in _lines_by_source(rows):
            flow = self.flow(source, table)
            flow.left_out.setdefault(reason, LeftOut()).add(lines)

    def combine(self, table: str, rows: pd.DataFrame) -> None:
        """Record ``rows`` as merged into other rows of ``table`` (same key)."""
        for source, lines in _lines_by_source(rows):
            self.flow(source, table).combined += len(lines)

    def joined(self, rows: pd.DataFrame, target: str, used: np.ndarray | pd.Series) -> None:
        """Record the rows of a looked-up input: ``used`` ones annotated ``target`` rows."""
        used = np.asarray(used, dtype=bool)
        table = f"joined into {target}"
        for source, lines in _lines_by_source(rows[used]):
            self.flow(source, table).landed += len(lines)
        self.leave_out(table, rows[~used], f"matches no row of {target}")

    def landed(self, table: str, frame: pd.DataFrame | None) -> None:
        """Count the final rows of ``table`` per input file."""
        if frame is None:
            return
        self.written[table] = len(frame)
        for source, lines in _lines_by_source(frame):
            self.flow(source, table).landed += len(lines)

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def count_unmapped(self, kind: str, counts: Mapping[str, int]) -> None:
        bucket = self.unmapped.setdefault(kind, {})
        for name, n in counts.items():
            bucket[name] = bucket.get(name, 0) + int(n)

    # ----------------------------------------------------------------- reading

    @property
    def left_out_total(self) -> int:
        return sum(f.left_out_count for flows in self.flows.values() for f in flows.values())

    def to_text(self) -> str:
        """The summary a person reads: per input file, where its rows went and why not."""
        lines = [f"Import summary ({self.importer})"]
        for source, flows in self.flows.items():
            head = f"  {source}"
            if source in self.read:
                head += f": {_n(self.read[source], 'row')} read"
            lines.append(head)
            for table, flow in flows.items():
                lines.extend(_flow_lines(table, flow))
        if self.written:
            parts = ", ".join(f"{t} {n:,}" for t, n in self.written.items())
            lines.append(f"  written: {parts}")
        if self.notes:
            lines.append("  notes:")
            lines.extend(f"    - {n}" for n in self.notes)
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "importer": self.importer,
            "read": dict(self.read),
            "flows": {
                source: {
                    table: {
                        "landed": f.landed,
                        "combined": f.combined,
                        "left_out": {r: x.count for r, x in f.left_out.items()},
                    }
                    for table, f in flows.items()
                }
                for source, flows in self.flows.items()
            },
            "written": dict(self.written),
            "unmapped": {k: dict(v) for k, v in self.unmapped.items()},
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class ImportResult:
    """What an importer returns: the contract tables and the account of every input row;
    ``funnel`` when the import brought its own (a mapping file's ``funnel:``)."""

    data: CRMData
    summary: ImportSummary
    funnel: Funnel | None = None


def _flow_lines(table: str, flow: Flow) -> list[str]:
    if table == NOWHERE:
        head = f"    not imported: {_n(flow.left_out_count, 'row')}"
    elif table.startswith("joined into"):
        head = f"    -> {table}: {flow.landed:,} used"
        if flow.left_out:
            head += f", {flow.left_out_count:,} unused"
    else:
        head = f"    -> {table}: {flow.landed:,} landed"
        if flow.combined:
            head += f", {flow.combined:,} combined into other rows of the same key"
        if flow.left_out:
            head += f", {flow.left_out_count:,} left out"
    out = [head]
    for reason, left in sorted(flow.left_out.items(), key=lambda kv: -kv[1].count):
        where = ""
        if left.lines:
            more = ", ..." if left.count > len(left.lines) else ""
            where = (
                f" (line{'s' if left.count > 1 else ''} {', '.join(map(str, left.lines))}{more})"
            )
        out.append(f"       {left.count:>6,}  {reason}{where}")
    return out


def _lines_by_source(rows: pd.DataFrame) -> Iterable[tuple[str, list[int]]]:
    if len(rows) == 0:
        return []
    src = rows[SRC].astype("str").to_numpy()
    line = rows[LINE].to_numpy(dtype=np.int64)
    out = []
    for source in dict.fromkeys(src):
        out.append((source, line[src == source].tolist()))
    return out


def _n(count: int, word: str) -> str:
    return f"{count:,} {word}" if count == 1 else f"{count:,} {word}s"


def tracked(frame: pd.DataFrame, source: str, lines: Iterable[int]) -> pd.DataFrame:
    """A copy of ``frame`` carrying the hidden SRC/LINE columns."""
    return frame.assign(**{SRC: source, LINE: np.asarray(list(lines), dtype=np.int64)})


def untracked(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` without the hidden columns."""
    return frame.drop(columns=[c for c in (SRC, LINE, ORDER) if c in frame.columns])
