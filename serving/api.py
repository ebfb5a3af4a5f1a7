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
from collections.abc import Mapping
from typing import Protocol

import pandas as pd
from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException

from crm.data import CRMData
from crm.schemas import Funnel
from serving.api_models import (
    SCORE_EXAMPLE,
    DealIn,
    DealsResponse,
    ErrorBody,
    Health,
    Problem,
    RankedDeal,
    Scalar,
    ScoreRequest,
    StageRowIn,
    TouchpointIn,
    row_model,
)
from serving.api_validation import (
    PARTS,
    TABLE_PART,
    Invalid,
    check_history,
    problem,
    pydantic_problem,
)

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "PARTS",
    "SCORE_EXAMPLE",
    "TABLE_PART",
    "BodyLimit",
    "DealIn",
    "DealsResponse",
    "ErrorBody",
    "Health",
    "Invalid",
    "Problem",
    "RankedDeal",
    "Scalar",
    "ScoreRequest",
    "Scorer",
    "StageRowIn",
    "TouchpointIn",
    "check_history",
    "create_app",
    "row_model",
]

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000


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
            raise Invalid([problem("query", "stage", f"unknown stage {stage!r}; use {stages}")])
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
            raise Invalid([problem("deal", None, str(exc), rule="not_scorable")]) from None
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


# --------------------------------------------------------------------------- errors, limits


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(Invalid)
    async def invalid(request: Request, exc: Invalid) -> JSONResponse:
        return _invalid_response(exc.problems)

    @app.exception_handler(RequestValidationError)
    async def malformed(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _invalid_response([pydantic_problem(e) for e in exc.errors()])

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
