"""The scoring API: health, today's ranked deals and scoring one deal from its JSON history.

The only serving module that imports the web stack. The app scores nothing itself: an
injected :class:`Scorer` does (``pipelines/serve.py`` builds the real one from the champion
and the CRM folder; tests pass a fake). Decisions, documented in the OpenAPI description:

- **Auth**: ``Authorization: Bearer <token>`` compared with :func:`hmac.compare_digest`;
  401 when missing or wrong. ``token=None`` turns auth off; the shell allows that only on a
  loopback host (``dealcast serve --no-auth``). ``/health`` and ``/openapi.json`` are open.
- **Limits**: a body over ``max_body_bytes`` is 413, judged on ``Content-Length`` and on the
  bytes actually received (chunked uploads too); more than ``max_rows`` rows in one
  ``POST /score`` (the deal + stage_history + touchpoints) is 413.
- **Input**: the body's row models are generated from ``crm.schemas`` (JSON types and
  required columns), then the rows are typed and checked by ``crm``'s own coercion and
  validator (timestamps, minimums, stages, outcomes, touchpoint targets, ...), so the API
  enforces exactly the contract a CRM folder must meet, all problems at once. Every problem
  is a 422 ``{"error": "invalid_input", "problems": [...]}`` naming table, field and row
  (1-based position in its array).
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Protocol

import numpy as np
import pandas as pd
from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, create_model
from starlette.exceptions import HTTPException

from crm.coerce import coerce_table
from crm.data import CRMData
from crm.read import RawTable
from crm.report import Finding, ValidationReport
from crm.schemas import CONTRACT, Funnel
from crm.validate import validate_tables

log = logging.getLogger(__name__)

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
#: Body part -> contract table.
PARTS = {"deal": "deals", "stage_history": "stage_history", "touchpoints": "touchpoints"}
TABLE_PART = {table: part for part, table in PARTS.items()}


class Scorer(Protocol):
    """What the API needs from a scorer (see ``pipelines/serve.py`` for the real one)."""

    #: The scoring moment: features use only rows stamped at or before it.
    as_of: pd.Timestamp
    #: Registered model name -> version serving, e.g. ``{"close": "3"}``.
    model_versions: Mapping[str, str]

    def ranked(self) -> pd.DataFrame:
        """Today's ranked open deals (cached by the scorer), ordered by ``rank``."""
        ...

    def score_deal(self, history: CRMData) -> pd.DataFrame:
        """Score one new or updated deal (and its rows) in the context of the loaded CRM.

        Returns its row(s) in the ranked-list columns; raises ``ValueError`` with a
        readable message when the deal cannot be scored (e.g. not open at ``as_of``).
        """
        ...


# --------------------------------------------------------------------------- body models

_TYPES: dict[str, type] = {
    "id": str,
    "string": str,
    "category": str,
    "timestamp": str,
    "date": str,
    "number": float,
    "integer": int,
}
_EXAMPLES = {"timestamp": "2026-06-01T09:30:00Z", "date": "2026-09-30", "number": 25000.0}


def _scalar(value: Any) -> Any:
    if not isinstance(value, str | int | float | bool | type(None)):
        raise ValueError("a custom attribute must be a string, number, boolean or null")
    return value


Scalar = Annotated[Any, AfterValidator(_scalar)]


class _Row(BaseModel):
    """A contract row; extra keys are the CRM's custom attributes and must be scalars."""

    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)
    __pydantic_extra__: dict[str, Scalar] = Field(init=False)


def row_model(table: str, *, name: str, optional: tuple[str, ...] = ()) -> type[BaseModel]:
    """A pydantic model of one row of ``table``, generated from its contract columns."""
    fields: dict[str, Any] = {}
    for col in CONTRACT[table].columns:
        required = col.required and col.name not in optional
        kind = _TYPES[col.kind]
        info = Field(
            ... if required else None,
            json_schema_extra=None if col.minimum is None else {"minimum": col.minimum},
            description=f"{col.kind}{', required' if required else ''}. {col.meaning}".strip(),
            examples=[_EXAMPLES[col.kind]] if col.kind in _EXAMPLES else None,
        )
        fields[col.name] = (kind if required else kind | None, info)
    return create_model(name, __base__=_Row, __doc__=CONTRACT[table].meaning, **fields)


DealIn = row_model("deals", name="DealIn")
StageRowIn = row_model("stage_history", name="StageRowIn", optional=("deal_id",))
TouchpointIn = row_model("touchpoints", name="TouchpointIn")

SCORE_EXAMPLE = {
    "deal": {
        "deal_id": "D-NEW-1",
        "created_at": "2026-05-04T10:00:00Z",
        "account_id": "A00012",
        "owner_id": "rep_07",
        "amount": 42000,
        "source": "inbound",
    },
    "stage_history": [
        {"stage": "lead", "entered_at": "2026-05-04T10:00:00Z"},
        {"stage": "qualified", "entered_at": "2026-05-20T15:00:00Z"},
    ],
    "touchpoints": [
        {
            "deal_id": "D-NEW-1",
            "occurred_at": "2026-05-21T09:00:00Z",
            "channel": "meeting",
            "direction": "outbound",
        }
    ],
}


class ScoreRequest(BaseModel):
    """One open deal with its own rows, as the data contract describes them."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [SCORE_EXAMPLE]})

    deal: DealIn = Field(description="The deal (a `deals` row); it must still be open.")
    stage_history: list[StageRowIn] = Field(
        default_factory=list,
        description="Stages the deal entered; `deal_id` defaults to the deal's.",
    )
    touchpoints: list[TouchpointIn] = Field(
        default_factory=list,
        description="Touches of this deal (`deal_id`) or of its account (`account_id`).",
    )

    def n_rows(self) -> int:
        return 1 + len(self.stage_history) + len(self.touchpoints)


class Problem(BaseModel):
    table: str | None = Field(None, description="deal, stage_history, touchpoints or query")
    field: str | None = None
    row: int | None = Field(None, description="1-based position in its array")
    rule: str
    message: str
    hint: str | None = None


class ErrorBody(BaseModel):
    error: str
    message: str
    problems: list[Problem] = []


class RankedDeal(BaseModel):
    """One row of the ranked list (more columns may follow)."""

    model_config = ConfigDict(extra="allow")
    rank: int
    deal_id: str
    account_id: str | None
    owner_id: str | None
    stage: str | None
    days_in_stage: int | None
    amount: float | None
    p_win: float = Field(description="P(won within the horizon), calibrated")
    expected_value: float | None = Field(description="p_win * amount")
    next_stage: str | None
    p_next_stage: float | None
    reasons_up: str | list[str] | None
    reasons_down: str | list[str] | None
    model_version: str | None
    data_fingerprint: str | None


class DealsResponse(BaseModel):
    as_of: str
    total: int = Field(description="rows matching the filters before the limit")
    count: int
    deals: list[RankedDeal]
    warnings: list[Problem] = []


class Health(BaseModel):
    status: str
    as_of: str
    model_versions: dict[str, str]
    n_open_deals: int


# --------------------------------------------------------------------------- the app


def create_app(
    *,
    scorer: Scorer,
    token: str | None,
    max_body_bytes: int,
    max_rows: int,
    funnel: Funnel,
) -> FastAPI:
    """The scoring API around ``scorer``; ``token=None`` disables auth (loopback only)."""
    app = FastAPI(
        title="dealcast scoring API",
        version="1",
        description=__doc__,
        responses={422: {"model": ErrorBody}, 413: {"model": ErrorBody}},
    )
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    _add_error_handlers(app)
    auth = [Depends(_token_check(token))]
    stages = ", ".join(funnel.stages)

    @app.get("/health", response_model=Health, summary="Liveness, models and data")
    def health() -> dict:
        """No auth. The models serving, the scoring moment and how many deals are open."""
        return {
            "status": "ok",
            "as_of": _iso(scorer.as_of),
            "model_versions": {k: str(v) for k, v in scorer.model_versions.items()},
            "n_open_deals": len(scorer.ranked()),
        }

    @app.get(
        "/deals",
        dependencies=auth,
        summary="Today's ranked open deals",
        responses={200: {"model": DealsResponse}, 401: {"model": ErrorBody}},
    )
    def deals(
        owner: str | None = Query(None, max_length=200, description="Only this owner_id."),
        stage: str | None = Query(None, description=f"Only this open stage: {stages}."),
        limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Rows to return."),
    ) -> JSONResponse:
        """Open deals in rank order (params ``score.priority``: expected value or p_win),
        optionally filtered; ``rank`` stays the team-wide rank."""
        if stage is not None and stage not in funnel.stages:
            raise Invalid([_problem("query", "stage", f"unknown stage {stage!r}; use {stages}")])
        frame = scorer.ranked()
        if owner is not None:
            frame = frame[frame["owner_id"] == owner]
        if stage is not None:
            frame = frame[frame["stage"] == stage]
        return JSONResponse(_listing(scorer.as_of, frame, limit=limit))

    @app.post(
        "/score",
        dependencies=auth,
        summary="Score one deal from its history",
        responses={200: {"model": DealsResponse}, 401: {"model": ErrorBody}},
    )
    def score(body: ScoreRequest) -> JSONResponse:
        """Validate the deal and its rows against the data contract and score it as of the
        API's ``as_of``, together with the loaded CRM. Warnings (e.g. rows after ``as_of``,
        which scoring ignores) come back with the result."""
        if body.n_rows() > max_rows:
            raise HTTPException(413, f"{body.n_rows()} rows; at most {max_rows} per request")
        history, warnings = check_history(body, funnel=funnel, as_of=scorer.as_of)
        try:
            scored = scorer.score_deal(history)
        except ValueError as exc:
            raise Invalid([_problem("deal", None, str(exc), rule="not_scorable")]) from None
        listing = _listing(scorer.as_of, scored, limit=MAX_LIMIT)
        return JSONResponse(listing | {"warnings": [w.model_dump() for w in warnings]})

    return app


def _token_check(token: str | None):
    if token is not None and not token.strip():
        raise ValueError("an empty token would let anyone in; pass None to disable auth")
    bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <token>`")
    expected = token.encode() if token is not None else None

    def check(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        if expected is None:
            return
        given = credentials.credentials.encode() if credentials is not None else b""
        if not hmac.compare_digest(given, expected):
            raise HTTPException(
                401, "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"}
            )

    return check


def _listing(as_of: pd.Timestamp, frame: pd.DataFrame, *, limit: int) -> dict:
    if "rank" in frame:
        frame = frame.sort_values("rank", kind="stable")
    page = frame.head(limit)
    records = json.loads(page.to_json(orient="records", date_format="iso")) if len(page) else []
    return {"as_of": _iso(as_of), "total": len(frame), "count": len(records), "deals": records}


def _iso(moment: pd.Timestamp) -> str:
    return pd.Timestamp(moment).isoformat()


# --------------------------------------------------------------------------- validation


class Invalid(Exception):
    """The request breaks the contract: answered as 422 with every problem."""

    def __init__(self, problems: list[Problem]):
        super().__init__(f"{len(problems)} problem(s)")
        self.problems = problems


def _problem(table: str | None, field: str | None, message: str, **kw: Any) -> Problem:
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
                problems.append(_problem(part, "deal_id", message, row=i, rule="other_deal"))
            elif (
                part == "touchpoints" and r.deal_id is None and r.account_id not in (None, account)
            ):
                message = f"account {r.account_id!r} is not the deal's ({account!r})"
                problems.append(_problem(part, "account_id", message, row=i, rule="other_deal"))
    return problems


def _still_open(deals: pd.DataFrame) -> list[Problem]:
    if deals["closed_at"].notna().any() or deals["outcome"].notna().any():
        return [
            _problem(
                "deal",
                "closed_at",
                "the deal is closed; only open deals are scored",
                rule="deal_closed",
            )
        ]
    return []


# --------------------------------------------------------------------------- errors, limits


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(Invalid)
    async def invalid(request: Request, exc: Invalid) -> JSONResponse:
        return _invalid_response(exc.problems)

    @app.exception_handler(RequestValidationError)
    async def malformed(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _invalid_response([_pydantic_problem(e) for e in exc.errors()])

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        body = {"error": _ERROR_NAMES.get(exc.status_code, "error"), "message": str(exc.detail)}
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


_ERROR_NAMES = {
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    400: "bad_request",
}


def _invalid_response(problems: list[Problem]) -> JSONResponse:
    body = ErrorBody(
        error="invalid_input",
        message=f"{len(problems)} problem(s) with the request; see problems",
        problems=problems,
    )
    return JSONResponse(body.model_dump(), status_code=422)


def _pydantic_problem(error: Mapping[str, Any]) -> Problem:
    """A pydantic error located as table/field/row: loc ``body.touchpoints.2.channel``."""
    loc = [p for p in error.get("loc", ()) if p != "body"]
    if error.get("loc", ("",))[0] in ("query", "header", "path"):
        return _problem(
            "query", str(loc[1]) if len(loc) > 1 else None, error["msg"], rule=error["type"]
        )
    table = str(loc[0]) if loc else None
    row = int(loc[1]) + 1 if len(loc) > 1 and isinstance(loc[1], int) else None
    fields = [str(p) for p in loc[1:] if not isinstance(p, int)]
    field = ".".join(fields) or None
    return _problem(table, field, error["msg"], row=row, rule=error["type"])


class BodyLimit:
    """ASGI middleware: 413 for bodies over ``max_bytes`` (declared or actually sent)."""

    def __init__(self, app, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await self._refuse(send)
        received = 0

        async def counted():
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise HTTPException(413, self._message())
            return message

        await self.app(scope, counted, send)

    def _message(self) -> str:
        return f"request body over {self.max_bytes} bytes"

    async def _refuse(self, send) -> None:
        response = JSONResponse({"error": "too_large", "message": self._message()}, 413)
        await send({"type": "http.response.start", "status": 413, "headers": response.raw_headers})
        await send({"type": "http.response.body", "body": response.body})
