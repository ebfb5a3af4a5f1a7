"""The scoring API: health, today's ranked deals, one deal explained, and scoring one deal
from its JSON history.

The only serving module that imports the web stack. The app scores nothing itself: an
injected :class:`Scorer` does (``pipelines/serve.py`` builds the real one from the champion
and the CRM folder; tests pass a fake). Its decisions (auth, limits, load, times, docs,
errors, input) are written for its users in :data:`serving.api_docs.DESCRIPTION`, the
OpenAPI description shown at ``/docs``. In short: the bearer token is checked before the
body is read (:class:`Guard`, also for size and read time); posted deals are validated by
the contract's own rules (:mod:`serving.api_validation`) and scored in batches
(:class:`serving.api_batches.Batches`); bodies are written by :mod:`serving.api_records`
and :mod:`serving.api_deal`, every timestamp by :mod:`serving.api_times`.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Collection, Mapping
from typing import Protocol

import pandas as pd
from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException

from crm.data import CRMData
from crm.schemas import Funnel
from serving.api_batches import Batches
from serving.api_deal import DealExplained, explanation_body
from serving.api_docs import (
    ASSETS_PATH,
    DESCRIPTION,
    DOCS_PATHS,
    SWAGGER_FILES,
    SWAGGER_PARAMETERS,
    asset_url,
)
from serving.api_models import DealsResponse, ErrorBody, Health, Problem, ScoreRequest
from serving.api_records import (
    head,
    listing,
    note_record,
    ranked,
    records_many,
    stage_warnings,
)
from serving.api_times import iso_utc, uniform_times
from serving.api_validation import Invalid, check_many, problem, pydantic_problem
from serving.explain_deal import DealExplanation, DealNotInCRMError, UnknownDealError

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
#: Paths answered without a token.
OPEN_PATHS = frozenset({"/health", "/openapi.json"}) | DOCS_PATHS


class Scorer(Protocol):
    """What the API needs from a scorer (see ``pipelines/serve.py`` for the real one)."""

    #: The scoring moment: features use only rows stamped at or before it.
    as_of: pd.Timestamp
    #: Registered model name -> version serving, e.g. ``{"close": "3"}``.
    model_versions: Mapping[str, str]

    def ranked(self) -> pd.DataFrame:
        """Today's ranked open deals (cached by the scorer), ordered by ``rank``."""
        ...

    def score_deals(self, histories: list[CRMData]) -> list[tuple[pd.DataFrame, list] | ValueError]:
        """Score new or updated deals (each with its rows) in the context of the loaded CRM,
        each exactly as if it alone were posted.

        Per deal: its row(s) in the ranked-list columns and notes (objects with ``table``,
        ``rule`` and ``message``) on how the posted rows met the CRM's; or a ``ValueError``
        with a readable message when it cannot be scored (e.g. not open at ``as_of``).
        """
        ...

    def explain(self, deal_id: str, *, step_days: int, points: int) -> DealExplanation:
        """``deal_id`` explained at ``as_of`` by :func:`serving.explain_deal.explain_deal`
        (history: a snapshot every ``step_days``, at most ``points``); its
        ``DealNotInCRMError`` / ``UnknownDealError`` when the deal is unknown / not open."""
        ...


# --------------------------------------------------------------------------- the app


def create_app(
    *,
    scorer: Scorer,
    token: str | None,
    max_body_bytes: int,
    max_rows: int,
    funnel: Funnel,
    read_timeout_s: float,
    score_threads: int,
    batch_max: int,
    explain_step_days: int,
    explain_points: int,
    docs_assets: Mapping[str, bytes],
) -> FastAPI:
    """The scoring API around ``scorer``; ``token=None`` disables auth (loopback only).

    ``explain_step_days`` / ``explain_points``: the history of ``GET /deals/{deal_id}``
    (params ``score.explain_*``); ``docs_assets``: the Swagger UI files of
    :data:`serving.api_docs.SWAGGER_FILES` by name (the shell reads them)."""
    app = FastAPI(
        title="dealcast scoring API",
        version="1",
        description=DESCRIPTION,
        responses={422: {"model": ErrorBody}, 413: {"model": ErrorBody}},
        docs_url=None,
        redoc_url=None,
    )
    app.add_middleware(Guard, token=token, open_paths=OPEN_PATHS, max_bytes=max_body_bytes,
                       read_timeout_s=read_timeout_s)  # fmt: skip
    _add_error_handlers(app)
    auth = [Depends(_token_check(token))]
    stages = ", ".join(funnel.stages)

    @app.get("/health", response_model=Health, summary="Liveness, models and data")
    async def health() -> dict:
        """No auth. The models serving, the scoring moment and how many deals are open.
        Answered on the event loop: never queued behind scoring."""
        return {
            "status": "ok",
            "as_of": iso_utc(scorer.as_of),
            "model_versions": {k: str(v) for k, v in scorer.model_versions.items()},
            "n_open_deals": len(scorer.ranked()),
        }

    _add_docs(app, docs_assets)

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
        return JSONResponse(listing(scorer.as_of, frame, limit=limit))

    _add_deal(app, scorer, auth=auth, step_days=explain_step_days, points=explain_points)

    def score_bodies(bodies: list[ScoreRequest]) -> list[dict | Invalid]:
        checked = check_many(bodies, funnel=funnel, as_of=scorer.as_of)
        valid = [i for i, c in enumerate(checked) if not isinstance(c, Invalid)]
        scored = scorer.score_deals([checked[i][0] for i in valid]) if valid else []
        out: list[dict | Invalid] = list(checked)
        done = []
        for i, result in zip(valid, scored, strict=True):
            if isinstance(result, ValueError):
                out[i] = Invalid([problem("deal", None, str(result), rule="not_scorable")])
                continue
            frame, notes = result
            warnings = [w.model_dump() for w in checked[i][1]] + [note_record(n) for n in notes]
            warnings += stage_warnings(frame, stages=funnel.stages, as_of=scorer.as_of)
            done.append((i, frame, warnings))
        pages = records_many([head(frame, MAX_LIMIT) for _, frame, _ in ranked(done)])
        for (i, frame, warnings), records in zip(done, pages, strict=True):
            out[i] = {"as_of": iso_utc(scorer.as_of), "total": len(frame),
                      "count": len(records), "deals": records, "warnings": warnings}  # fmt: skip
        return out

    batches = Batches(score_bodies, max_batch=batch_max, workers=score_threads)

    @app.post(
        "/score",
        dependencies=auth,
        summary="Score one deal from its history",
        responses={200: {"model": DealsResponse}, 401: {"model": ErrorBody}},
    )
    async def score(body: ScoreRequest) -> JSONResponse:
        """Validate the deal and its rows against the data contract and score it as of the
        API's ``as_of`` in the context of the loaded CRM, exactly as the daily export
        would if the deal were in the CRM; ``rank`` is its rank among today's deals.
        Reposting a deal of the CRM replaces its deal row, and its stage_history /
        touchpoints rows when some are posted (none posted keeps the CRM's). Warnings
        (what was replaced or kept, rows after ``as_of``, which scoring ignores) come back
        with the result."""
        if body.n_rows() > max_rows:
            raise HTTPException(413, f"{body.n_rows()} rows; at most {max_rows} per request")
        result = await batches.submit(body)
        if isinstance(result, Invalid):
            raise result
        return JSONResponse(result)

    return app


def _add_deal(app: FastAPI, scorer: Scorer, *, auth: list, step_days: int, points: int) -> None:
    @app.get(
        "/deals/{deal_id}",
        dependencies=auth,
        response_model=DealExplained,
        summary="One deal explained",
        responses={401: {"model": ErrorBody}, 404: {"model": ErrorBody},
                   409: {"model": ErrorBody}},
    )  # fmt: skip
    def deal(deal_id: str = Path(max_length=200, description="The deal's id")) -> dict:
        """The deal's p_win and next stage now, beside the stage table's p_win; every driver
        up and down in plain language with the value behind it; and what was said at past
        snapshots. The same explanation as ``dealcast explain DEAL_ID`` at the API's
        ``as_of``. An id not in the CRM: 404. A deal not open at ``as_of`` (closed, or
        created after it): 409 ``deal_not_open``, saying when and how it closed (``dealcast
        explain DEAL_ID --as-of DATE`` shows an earlier moment)."""
        try:
            explained = scorer.explain(deal_id, step_days=step_days, points=points)
        except DealNotInCRMError as exc:
            raise HTTPException(404, str(exc)) from None
        except UnknownDealError as exc:
            raise HTTPException(409, str(exc)) from None
        return explanation_body(explained, model_versions=scorer.model_versions)


def _add_docs(app: FastAPI, assets: Mapping[str, bytes]) -> None:
    """``/docs``: Swagger UI on ``/openapi.json``, its files served from ``assets``."""
    missing = sorted(set(SWAGGER_FILES) - set(assets))
    if missing:
        raise ValueError(f"the Swagger UI files {missing} are missing from docs_assets")

    @app.get("/docs", include_in_schema=False)
    def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}", title=f"{app.title} - docs",
            swagger_js_url=root + asset_url("swagger-ui-bundle.js"),
            swagger_css_url=root + asset_url("swagger-ui.css"),
            swagger_favicon_url=root + asset_url("favicon-32x32.png"),
            swagger_ui_parameters=SWAGGER_PARAMETERS,
        )  # fmt: skip

    @app.get(ASSETS_PATH + "/{name}", include_in_schema=False)
    def asset(name: str) -> Response:
        if name not in SWAGGER_FILES:
            raise HTTPException(404, f"no docs file {name!r}")
        return Response(assets[name], media_type=SWAGGER_FILES[name],
                        headers={"Cache-Control": "public, max-age=86400"})  # fmt: skip


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
        message = uniform_times(str(exc.detail))
        body = {"error": _ERROR_NAMES.get(exc.status_code, "error"), "message": message}
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


_ERROR_NAMES = {
    401: "unauthorized",
    408: "timeout",
    404: "not_found",
    409: "deal_not_open",
    405: "method_not_allowed",
    413: "too_large",
    400: "bad_request",
}


def _invalid_response(problems: list[Problem]) -> JSONResponse:
    problems = [p.model_copy(update={"message": uniform_times(p.message)}) for p in problems]
    body = ErrorBody(
        error="invalid_input",
        message=f"{len(problems)} problem(s) with the request; see problems",
        problems=problems,
    )
    return JSONResponse(body.model_dump(), status_code=422)


class Guard:
    """ASGI middleware run before the app reads anything of the request's body.

    - 401 (connection closed) when a path other than ``open_paths`` lacks the bearer
      token (``token=None``: auth off), without reading the body;
    - 413 for bodies over ``max_bytes`` (declared, or counted as they arrive);
    - 408 (connection closed) when the body is not complete ``read_timeout_s`` after the
      request started (a client that stops sending does not hold a worker).
    """

    def __init__(
        self,
        app,
        *,
        token: str | None,
        open_paths: Collection[str],
        max_bytes: int,
        read_timeout_s: float,
    ) -> None:
        self.app = app
        self.open_paths = frozenset(open_paths)
        self.expected = token.encode() if token is not None else None
        self.max_bytes = max_bytes
        self.read_timeout_s = read_timeout_s

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        if scope["path"] not in self.open_paths and not self._authorized(headers):
            body = {"error": "unauthorized", "message": "missing or wrong bearer token"}
            return await _reply(send, 401, body, [(b"www-authenticate", b"Bearer")])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await _reply(send, 413, {"error": "too_large", "message": self._too_large()})
        await self.app(scope, self._guarded(receive), send)

    def _authorized(self, headers: dict) -> bool:
        if self.expected is None:
            return True
        scheme, _, given = headers.get(b"authorization", b"").partition(b" ")
        return scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), self.expected)

    def _guarded(self, receive):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.read_timeout_s
        state = {"received": 0, "done": False}

        async def guarded():
            if state["done"]:
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), max(deadline - loop.time(), 0.0))
            except TimeoutError:
                raise HTTPException(
                    408,
                    f"the request body was not complete within {self.read_timeout_s:g} s",
                    {"Connection": "close"},
                ) from None
            state["received"] += len(message.get("body", b""))
            state["done"] = not message.get("more_body", False)
            if state["received"] > self.max_bytes:
                raise HTTPException(413, self._too_large())
            return message

        return guarded

    def _too_large(self) -> str:
        return f"request body over {self.max_bytes} bytes"


async def _reply(send, status: int, body: dict, headers: list | None = None) -> None:
    """Answer without reading the request's body, and close the connection."""
    response = JSONResponse(body, status)
    raw = [*response.raw_headers, *(headers or []), (b"connection", b"close")]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": response.body})
