"""Shared bits of the importer tests: the default funnel, the fixture folders, and small
helpers that turn results into plain tuples a person can compare by hand."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from crm.importers.common import DERIVED, NOWHERE, ImportSummary
from crm.load import load_crm
from crm.schemas import Funnel
from crm.write import write_crm

FIXTURES = Path(__file__).parent / "fixtures"
#: The funnel of the project's params.yaml.
DEFAULT_FUNNEL = Funnel(
    stages=("lead", "qualified", "meeting", "proposal", "negotiation"),
    won_label="won",
    lost_label="lost",
)


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def rows(frame: pd.DataFrame, *columns: str) -> list[tuple]:
    """The frame's rows as tuples (NaN/NaT -> None), in frame order."""
    out = []
    for values in frame[list(columns)].itertuples(index=False):
        out.append(tuple(None if pd.isna(v) else v for v in values))
    return out


def left_out(summary: ImportSummary, source: str, table: str) -> dict[str, int]:
    """reason -> count for one input and table."""
    flow = summary.flows[source][table]
    return {reason: x.count for reason, x in flow.left_out.items()}


def assert_every_row_accounted(summary: ImportSummary, *, sources: list[str]) -> None:
    """For inputs that feed one table: read = landed + combined + left out (+ not imported)."""
    for source in sources:
        flows = summary.flows[source]
        total = sum(f.landed + f.combined + f.left_out_count for f in flows.values())
        assert total == summary.read[source], (source, summary.to_text())


def write_and_validate(data, folder: Path, funnel: Funnel):
    """Write like the CLI does and run the contract's validation."""
    write_crm(data, folder, fmt="csv")
    return load_crm(folder, funnel=funnel, as_of=None)


__all__ = [
    "DEFAULT_FUNNEL",
    "DERIVED",
    "FIXTURES",
    "NOWHERE",
    "assert_every_row_accounted",
    "left_out",
    "rows",
    "utc",
    "write_and_validate",
]
