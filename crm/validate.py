"""Validating typed CRM frames (pure): every rule of the contract, all findings in one run.

:func:`validate_crm` checks a :class:`~crm.data.CRMData` built in memory (e.g. by the
synthetic generator); :func:`validate_tables` is the same for a set of tables that may
lack ``deals`` (what :func:`crm.load.load_crm` has after a failed read). Row numbers come
from each table's :class:`~crm.provenance.Provenance`; without one they are 1-based
positions.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from crm.checks import check_table
from crm.data import CRMData
from crm.provenance import Provenance, Scope
from crm.relations import check_relations
from crm.report import ValidationReport
from crm.schemas import TABLES, Funnel


def validate_crm(
    data: CRMData,
    *,
    funnel: Funnel,
    as_of: pd.Timestamp | None = None,
    report: ValidationReport | None = None,
    provenance: Mapping[str, Provenance] | None = None,
) -> ValidationReport:
    """Check typed tables against the contract; returns ``report`` (a new one if None).

    ``as_of`` (naive = UTC) is the instant after which timestamps are ``future_timestamp``;
    None skips that rule. Frames are never modified.
    """
    tables = {name: data.table(name) for name in data.present()}
    return validate_tables(tables, funnel=funnel, as_of=as_of, report=report, provenance=provenance)


def validate_tables(
    tables: Mapping[str, pd.DataFrame | None],
    *,
    funnel: Funnel,
    as_of: pd.Timestamp | None = None,
    report: ValidationReport | None = None,
    provenance: Mapping[str, Provenance] | None = None,
) -> ValidationReport:
    """Like :func:`validate_crm` for a mapping of table name to frame (None = absent)."""
    report = report if report is not None else ValidationReport()
    provenance = provenance or {}
    cutoff = as_utc(as_of)
    checked: dict[str, pd.DataFrame] = {}
    scopes: dict[str, Scope] = {}
    for name in TABLES:
        frame = tables.get(name)
        if frame is None:
            continue
        frame = frame.reset_index(drop=True)
        prov = provenance.get(name, Provenance())
        if prov.rows is not None and len(prov.rows) != len(frame):
            prov = Provenance(file=prov.file)
        scopes[name] = Scope(report, name, prov)
        checked[name] = check_table(name, frame, scopes[name], funnel, cutoff)
    check_relations(checked, scopes)
    return report


def as_utc(moment: pd.Timestamp | str | None) -> pd.Timestamp | None:
    """``moment`` as a UTC timestamp; naive values are read as UTC."""
    if moment is None:
        return None
    stamp = pd.Timestamp(moment)
    return stamp.tz_localize("UTC") if stamp.tz is None else stamp.tz_convert("UTC")
