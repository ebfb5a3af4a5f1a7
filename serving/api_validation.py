"""Contract-driven checks of a posted deal: ``crm``'s coercion and validator, every problem
at once as a :class:`~serving.api_models.Problem` naming table, field and row (1-based
position in its array). No web stack here: :mod:`serving.api` turns :class:`Invalid` into
a 422.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crm.coerce import coerce_table
from crm.data import CRMData
from crm.read import RawTable
from crm.report import Finding, ValidationReport
from crm.schemas import Funnel
from crm.validate import validate_tables
from serving.api_models import Problem, ScoreRequest
from serving.api_times import uniform_times
from serving.quick_check import quick_many, rows_of
from serving.single_deal import rows_between

log = logging.getLogger(__name__)

#: Body part -> contract table.
PARTS = {"deal": "deals", "stage_history": "stage_history", "touchpoints": "touchpoints"}
TABLE_PART = {table: part for part, table in PARTS.items()}


class Invalid(Exception):
    """The request breaks the contract: answered as 422 with every problem."""

    def __init__(self, problems: list[Problem]):
        super().__init__(f"{len(problems)} problem(s)")
        self.problems = problems


def problem(table: str | None, field: str | None, message: str, **kw: Any) -> Problem:
    return Problem(table=table, field=field, message=message, rule=kw.pop("rule", "invalid"), **kw)


def check_history(
    body: ScoreRequest, *, funnel: Funnel, as_of: pd.Timestamp | None
) -> tuple[CRMData, list[Problem]]:
    """Type and validate the posted rows with ``crm``; raise :class:`Invalid` on errors.

    Returns the typed one-deal CRM and the validator's warnings.
    """
    tables, report = _checked(rows_of(body), funnel=funnel, as_of=as_of)
    problems = [_finding_problem(f) for f in report.errors] + _ownership(body)
    problems += _still_open(tables["deals"]) if report.ok else []
    if problems:
        raise Invalid(problems)
    return CRMData(**tables), [_finding_problem(f) for f in report.warnings]


def check_many(
    bodies: list[ScoreRequest], *, funnel: Funnel, as_of: pd.Timestamp | None
) -> list[tuple[CRMData, list[Problem]] | Invalid]:
    """:func:`check_history` of each body, validating them together when that is exact.

    Bodies that plainly meet the contract are checked and typed by
    :func:`serving.quick_check.quick_many` (no finding, the same tables, without the
    per-call cost of ``crm``'s machinery); the others as follows.
    The contract's checks are per row or per deal, so when bodies of distinct deals and
    accounts (:func:`_apart`) together raise no finding at all, none does alone: they are
    typed and validated in one pass (the validator's cost is mostly per call, not per
    row) and split back. On any finding every body of that group is checked on its own, so
    problems and
    warnings are exactly what it gets alone.
    """
    out: list[tuple[CRMData, list[Problem]] | Invalid] = [Invalid([])] * len(bodies)
    rest = []
    for i, data in enumerate(quick_many(bodies, funnel=funnel, as_of=as_of)):
        if data is None:
            rest.append(i)
        else:
            out[i] = (data, [])
    for group in _apart([bodies[i] for i in rest]):
        members = [rest[k] for k in group]
        together = _together([bodies[i] for i in members], funnel=funnel, as_of=as_of)
        for k, i in enumerate(members):
            if together is not None:
                out[i] = together[k]
                continue
            try:
                out[i] = check_history(bodies[i], funnel=funnel, as_of=as_of)
            except Invalid as exc:
                out[i] = exc
    return out


def _apart(bodies: list[ScoreRequest]) -> list[list[int]]:
    """Positions of ``bodies`` in groups of distinct deals and accounts (so no row of one
    can be a copy of another's); a body with rows of another deal or account stands alone."""
    groups: list[tuple[list[int], set]] = []
    for i, body in enumerate(bodies):
        keys = {("deal", body.deal.deal_id), ("account", body.deal.account_id)} - {
            ("account", None)
        }
        alone = bool(_ownership(body))
        for members, taken in groups:
            if not alone and taken is not None and not keys & taken:
                members.append(i)
                taken |= keys
                break
        else:
            groups.append(([i], None if alone else keys))
    return [members for members, _ in groups]


def _together(
    bodies: list[ScoreRequest], *, funnel: Funnel, as_of: pd.Timestamp | None
) -> list[tuple[CRMData, list[Problem]] | Invalid] | None:
    """The bodies validated in one pass, or None when that pass found anything."""
    if len(bodies) < 2:
        return None
    parts = [rows_of(b) for b in bodies]
    rows = {t: [r for p in parts for r in p[t]] for t in PARTS.values()}
    tables, report = _checked(rows, funnel=funnel, as_of=as_of)
    if report.errors or report.warnings:
        return None
    out: list[tuple[CRMData, list[Problem]] | Invalid] = []
    start = dict.fromkeys(PARTS.values(), 0)
    filled = {t: {c: f[c].notna().to_numpy(bool) for c in f.columns} for t, f in tables.items()}
    closed = _closed(tables["deals"])
    for k, part in enumerate(parts):
        own = {}
        for table, records in part.items():
            if records:
                a, b = start[table], start[table] + len(records)
                start[table] = b
                own[table] = _own_columns(tables[table], filled[table], a, b, records)
        problems = _closed_problem() if closed[k] else []
        out.append(Invalid(problems) if problems else (CRMData(**own), []))
    return out


def _own_columns(
    frame: pd.DataFrame, filled: dict[str, np.ndarray], a: int, b: int, records: list[dict]
) -> pd.DataFrame:
    """A body's rows ``a:b`` without the custom attributes only other bodies posted."""
    posted = {k for r in records for k in r}
    keep = [c for c in frame.columns if c in posted or filled[c][a:b].any()]
    if len(keep) == len(frame.columns):
        return rows_between(frame, a, b)
    return pd.DataFrame({c: frame[c].array[a:b] for c in keep}, copy=False)


def _checked(
    rows: dict[str, list[dict]], *, funnel: Funnel, as_of: pd.Timestamp | None
) -> tuple[dict[str, pd.DataFrame], ValidationReport]:
    """The rows typed by ``crm``'s coercion and checked by its validator."""
    report = ValidationReport()
    tables, provenance = {}, {}
    for table, records in rows.items():
        if records:
            raw = RawTable(
                table, Path(TABLE_PART[table]), pd.DataFrame(records), _positions(records)
            )
            tables[table], provenance[table] = coerce_table(raw, funnel, report)
    try:
        validate_tables(tables, funnel=funnel, as_of=as_of, report=report, provenance=provenance)
    except Exception:  # a crash on broken rows must not hide the findings already made
        log.exception("validating a posted deal failed")
        if report.ok:
            raise
    return tables, report


def _positions(records: list) -> np.ndarray:
    return np.arange(1, len(records) + 1)


def _finding_problem(finding: Finding) -> Problem:
    part = TABLE_PART.get(finding.table, finding.table)
    row = finding.rows[0] if finding.rows and part != "deal" else None
    message = uniform_times(finding.message)
    if len(finding.rows) > 1:
        message += f" (rows {', '.join(map(str, finding.rows))})"
    return Problem(
        table=part,
        field=finding.column,
        row=row,
        rule=finding.rule,
        message=message,
        hint=finding.hint,
    )


def _ownership(body: ScoreRequest) -> list[Problem]:
    """Rows must belong to the posted deal (or, for touchpoints, to its account)."""
    deal, account = body.deal.deal_id, body.deal.account_id
    problems = []
    for part, rows in (("stage_history", body.stage_history), ("touchpoints", body.touchpoints)):
        for i, r in enumerate(rows, start=1):
            if r.deal_id is not None and r.deal_id != deal:
                message = f"row is about deal {r.deal_id!r}, not {deal!r}"
                problems.append(problem(part, "deal_id", message, row=i, rule="other_deal"))
            elif (
                part == "touchpoints" and r.deal_id is None and r.account_id not in (None, account)
            ):
                message = f"account {r.account_id!r} is not the deal's ({account!r})"
                problems.append(problem(part, "account_id", message, row=i, rule="other_deal"))
    return problems


def _still_open(deals: pd.DataFrame) -> list[Problem]:
    return _closed_problem() if _closed(deals).any() else []


def _closed(deals: pd.DataFrame) -> np.ndarray:
    """Per deal row: closed (a close time or an outcome)."""
    return deals["closed_at"].notna().to_numpy(bool) | deals["outcome"].notna().to_numpy(bool)


def _closed_problem() -> list[Problem]:
    message = "the deal is closed; only open deals are scored"
    return [problem("deal", "closed_at", message, rule="deal_closed")]


def pydantic_problem(error: Mapping[str, Any]) -> Problem:
    """A pydantic error located as table/field/row: loc ``body.touchpoints.2.channel``."""
    loc = [p for p in error.get("loc", ()) if p != "body"]
    if error.get("loc", ("",))[0] in ("query", "header", "path"):
        return problem(
            "query", str(loc[1]) if len(loc) > 1 else None, error["msg"], rule=error["type"]
        )
    table = str(loc[0]) if loc else None
    row = int(loc[1]) + 1 if len(loc) > 1 and isinstance(loc[1], int) else None
    fields = [str(p) for p in loc[1:] if not isinstance(p, int)]
    field = ".".join(fields) or None
    return problem(table, field, error["msg"], row=row, rule=error["type"])
