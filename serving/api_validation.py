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
    deal_id = body.deal.deal_id
    rows = {
        "deals": [body.deal.model_dump()],
        "stage_history": [
            {**r.model_dump(), "deal_id": r.deal_id or deal_id} for r in body.stage_history
        ],
        "touchpoints": [r.model_dump() for r in body.touchpoints],
    }
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
    problems = [_finding_problem(f) for f in report.errors] + _ownership(body)
    problems += _still_open(tables["deals"]) if report.ok else []
    if problems:
        raise Invalid(problems)
    return CRMData(**tables), [_finding_problem(f) for f in report.warnings]


def _positions(records: list) -> np.ndarray:
    return np.arange(1, len(records) + 1)


def _finding_problem(finding: Finding) -> Problem:
    part = TABLE_PART.get(finding.table, finding.table)
    row = finding.rows[0] if finding.rows and part != "deal" else None
    message = finding.message
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
    if deals["closed_at"].notna().any() or deals["outcome"].notna().any():
        return [
            problem(
                "deal",
                "closed_at",
                "the deal is closed; only open deals are scored",
                rule="deal_closed",
            )
        ]
    return []


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
