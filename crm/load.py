"""Loading a CRM folder: read, type and validate, in one call that never raises.

:func:`load_crm` is what the CLI and the pipelines call. Every problem becomes a finding
in the report; the data is returned only when the report has no errors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from crm.coerce import coerce_table
from crm.data import CRMData
from crm.health import HealthSettings, check_health
from crm.provenance import Provenance
from crm.read import locate_tables, read_table
from crm.report import ValidationReport
from crm.schemas import Funnel
from crm.validate import validate_tables


@dataclass(frozen=True)
class LoadResult:
    """The outcome of :func:`load_crm`.

    ``data`` is None when the report has errors (the data is not usable); ``sources``
    maps each table found to the file it was read from.
    """

    data: CRMData | None
    report: ValidationReport
    sources: dict[str, Path] = field(default_factory=dict)


def load_crm(
    folder: Path,
    *,
    funnel: Funnel,
    as_of: pd.Timestamp | None,
    health: HealthSettings | None = None,
) -> LoadResult:
    """Read, type and validate the CRM tables in ``folder``.

    ``as_of`` (tz-aware UTC; naive is read as UTC; None skips the check) is the instant
    after which timestamps are warned about as ``future_timestamp``. With ``health``, data
    without errors also gets the data-health warnings of :mod:`crm.health`. Never raises for bad
    data: a missing folder, unreadable files and broken values are all findings. An
    unexpected failure inside dealcast itself is reported as ``internal_error``.
    """
    report = ValidationReport()
    sources: dict[str, Path] = {}
    tables: dict[str, pd.DataFrame] = {}
    try:
        sources = locate_tables(Path(folder), report)
        provenance: dict[str, Provenance] = {}
        for name, path in sources.items():
            raw = read_table(name, path, report)
            if raw is not None:
                tables[name], provenance[name] = coerce_table(raw, funnel, report)
        validate_tables(tables, funnel=funnel, as_of=as_of, report=report, provenance=provenance)
        if health is not None and report.ok and "deals" in tables:
            check_health(tables, settings=health, report=report, provenance=provenance, as_of=as_of)
    except Exception as exc:  # noqa: BLE001 - a bug must still end as a report, not a traceback
        report.error(
            "internal_error",
            "deals",
            f"dealcast failed while loading: {type(exc).__name__}: {exc}",
            hint="please report this, with the file that caused it if you can share it",
        )
    usable = report.ok and "deals" in tables
    data = CRMData(**tables) if usable else None
    return LoadResult(data=data, report=report, sources=sources)
