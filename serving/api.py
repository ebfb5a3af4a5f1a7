"""The scoring API: health, today's ranked deals and scoring one deal from its JSON history.

The only serving module that imports the web stack. The app scores nothing itself: an
injected :class:`Scorer` does (``pipelines/serve.py`` builds the real one from the champion
and the CRM folder; tests pass a fake). Decisions, documented in the OpenAPI description:

- **Auth**: ``Authorization: Bearer <token>`` compared with :func:`hmac.compare_digest`;
  401 when missing or wrong. ``token=None`` turns auth off; the shell allows that only on a
  loopback host (``dealcast serve --no-auth``). ``/health`` and ``/openapi.json`` are open.
  The token is checked before the body is read: a request without it is answered 401 at
  once (and the connection closed), whatever it is still sending.
- **Limits**: a body over ``max_body_bytes`` is 413, judged on ``Content-Length`` and on the
  bytes actually received (chunked uploads too); more than ``max_rows`` rows in one
  ``POST /score`` (the deal + stage_history + touchpoints) is 413; a body not complete
  within ``read_timeout_s`` of the request's start is 408 and the connection is closed.
- **Load**: posted deals that arrive together are validated and scored together (at most
  ``batch_max`` per batch, ``score_threads`` batches at once, in worker threads), each
  with exactly the result it would get alone; ``/health`` never waits for them.
- **Times**: every timestamp in a response is ISO 8601 in UTC with a ``Z``, whole seconds
  (``2026-06-30T00:00:00Z``).
- **Docs**: ``/docs`` is a self-contained page (no CDN, works offline) rendered from
  ``/openapi.json``.
- **Input**: the body's row models are generated from ``crm.schemas`` (JSON types and
  required columns), then the rows are typed and checked by ``crm``'s own coercion and
  validator (timestamps, minimums, stages, outcomes, touchpoint targets, ...), so the API
  enforces exactly the contract a CRM folder must meet, all problems at once (a body that
  plainly meets it passes a cheaper equivalent check, ``serving.quick_check``). Every problem
  is a 422 ``{"error": "invalid_input", "problems": [...]}`` naming table, field and row
  (1-based position in its array). Reposting a deal that is in the loaded CRM replaces
  its rows (see ``serving.single_deal``); the ``warnings`` say what was replaced or kept.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import anyio
import numpy as np
import pandas as pd
from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException

from crm.data import CRMData
from crm.schemas import Funnel
from serving.api_docs import docs_html
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
    check_many,
    problem,
    pydantic_problem,
)

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "PARTS",
    "SCORE_EXAMPLE",
    "TABLE_PART",
    "Guard",
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

log = logging.getLogger(__name__)

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
#: How a batch of posted bodies is gathered (:meth:`Batches._gather`): the first body
#: waits for those still arriving, at most GATHER_SHARE of the last batch's scoring time,
#: within [GATHER_MIN_S, GATHER_MAX_S], and no longer once GATHER_IDLE_SHARE of that
#: passes without one.
GATHER_STEP_S = 0.005
GATHER_MIN_S = 0.030
GATHER_MAX_S = 0.600
GATHER_SHARE = 1.0
GATHER_IDLE_SHARE = 0.5
#: What the first batch's gathering assumes of the last batch (none yet): it took this
#: long and answered a full batch (clients connecting at once arrive spread out).
GATHER_FIRST_S = 0.3
#: Paths answered without a token.
OPEN_PATHS = frozenset({"/health", "/openapi.json", "/docs"})


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
) -> FastAPI:
    """The scoring API around ``scorer``; ``token=None`` disables auth (loopback only)."""
    app = FastAPI(
        title="dealcast scoring API",
        version="1",
        description=__doc__,
        responses={422: {"model": ErrorBody}, 413: {"model": ErrorBody}},
        docs_url=None,
        redoc_url=None,
    )
    app.add_middleware(Guard, token=token, max_bytes=max_body_bytes, read_timeout_s=read_timeout_s)
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

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(docs_html(app.openapi()))

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
            warnings = [w.model_dump() for w in checked[i][1]] + [_note(n) for n in notes]
            done.append((i, frame, warnings))
        pages = _records_many([_head(frame, MAX_LIMIT) for _, frame, _ in _ranked(done)])
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


class Batches:
    """Posted bodies queued and handed to ``process`` in batches, in worker threads.

    Bodies that arrive while a batch is being scored are taken together (at most
    ``max_batch``), so the per-call cost of validation and scoring is paid once per batch
    rather than once per request; ``process`` returns one result per body, in order.
    At most ``workers`` batches run at once; the event loop (``/health``) never waits.
    """

    def __init__(self, process: Callable[[list], list], *, max_batch: int, workers: int) -> None:
        if max_batch < 1 or workers < 1:
            raise ValueError("max_batch and workers must be at least 1")
        self.process, self.max_batch, self.workers = process, max_batch, workers
        self._queue: asyncio.Queue | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task] = []
        self._last_s = GATHER_FIRST_S  # how long the last batch took to score
        self._expected = max_batch  # bodies answered by the last batch + queued meanwhile

    async def submit(self, item: Any) -> Any:
        """``process``'s result for ``item``; its exception if the whole batch failed."""
        loop = asyncio.get_running_loop()
        if self._queue is None or self._loop is not loop:  # first use, or a new event loop
            self._loop, self._queue = loop, asyncio.Queue()
            self._tasks = [loop.create_task(self._work(self._queue)) for _ in range(self.workers)]
        future = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((item, future))
        return await future

    async def _work(self, queue: asyncio.Queue) -> None:
        while True:
            batch = [await queue.get()]
            await self._gather(queue, batch)
            batch = [(item, f) for item, f in batch if not f.done()]  # gone clients
            if not batch:
                continue
            started, cpu = time.perf_counter(), [0.0]
            try:
                results = await anyio.to_thread.run_sync(self._timed, [i for i, _ in batch], cpu)
            except Exception as exc:  # a bug must fail these requests, not the worker
                results = [exc] * len(batch)
            self._last_s = time.perf_counter() - started
            self._expected = len(batch) + queue.qsize()
            log.warning(
                "scored a batch of %d bodies in %.0f ms (%.0f ms CPU)",
                len(batch), 1000 * self._last_s, 1000 * cpu[0],
            )  # fmt: skip
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, Exception) and not isinstance(result, Invalid):
                    future.set_exception(result)
                else:
                    future.set_result(result)

    def _timed(self, items: list, cpu: list[float]) -> list:
        """``process(items)``, its thread's CPU time in ``cpu[0]``."""
        started = time.thread_time()
        try:
            return self.process(items)
        finally:
            cpu[0] = time.thread_time() - started

    async def _gather(self, queue: asyncio.Queue, batch: list) -> None:
        """Add the queued bodies to ``batch``, and those still arriving.

        The per-batch cost is most of the cost, so a body that misses a batch waits a
        whole batch, and makes the next one pay the per-batch cost again. Clients answered
        by a batch usually post their next bodies at once, but they arrive spread over a
        while (each response sent and each body read on the event loop, the clients' own
        time): while fewer bodies are gathered than were queued or answered when the last
        batch ended (``_expected``), wait another :data:`GATHER_STEP_S`; once they are all
        here, stop when the queue stops growing. In all at most :data:`GATHER_SHARE` of
        the last batch's time, within :data:`GATHER_MIN_S` and :data:`GATHER_MAX_S`, and
        only while bodies keep coming (one within :data:`GATHER_IDLE_SHARE` of that: the
        clients may have stopped). Both scale with the last batch's time, so on a loaded
        machine, where clients come back slowly too, the wait grows with it. Before the
        first batch, :data:`GATHER_FIRST_S` stands for the last batch's time and a full
        batch is expected. Otherwise two groups of clients would take turns, each waiting
        for the other's batch.
        """
        loop = asyncio.get_running_loop()
        start = last = loop.time()
        longest = min(GATHER_MAX_S, max(GATHER_MIN_S, GATHER_SHARE * self._last_s))
        idle, expected = GATHER_IDLE_SHARE * longest, min(self.max_batch, self._expected)
        while True:
            while len(batch) < self.max_batch and not queue.empty():
                batch.append(queue.get_nowait())
            now = loop.time()
            if len(batch) >= self.max_batch or now - start >= longest:
                return
            before = queue.qsize()
            await asyncio.sleep(GATHER_STEP_S)
            if queue.qsize() > before:
                last = loop.time()
            elif len(batch) + queue.qsize() >= expected or loop.time() - last >= idle:
                return


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


def _note(note: Any) -> dict:
    """``Problem(table=note.table, rule=note.rule, message=note.message).model_dump()``,
    without pydantic's per-object cost (a few per scored deal)."""
    return {"table": note.table, "field": None, "row": None, "rule": note.rule,
            "message": note.message, "hint": None}  # fmt: skip


def _listing(as_of: pd.Timestamp, frame: pd.DataFrame, *, limit: int) -> dict:
    (frame,) = (f for _, f, _ in _ranked([(0, frame, None)]))
    (records,) = _records_many([_head(frame, limit)])
    return {"as_of": iso_utc(as_of), "total": len(frame), "count": len(records), "deals": records}


def _head(frame: pd.DataFrame, limit: int) -> pd.DataFrame:
    """``frame.head(limit)``, without its per-call cost when nothing is cut (a posted
    deal's one row)."""
    return frame if len(frame) <= limit else frame.head(limit)


def _ranked(items: list[tuple]) -> list[tuple]:
    """``(key, frame, extra)`` items with each frame in ``rank`` order."""
    return [
        (k, f.sort_values("rank", kind="stable") if "rank" in f and len(f) > 1 else f, x)
        for k, f, x in items
    ]


def _records_many(pages: list[pd.DataFrame]) -> list[list[dict]]:
    """Each page's rows as JSON records (timestamps in :func:`iso_utc`), serialised in one
    pass for all pages: the per-call cost of ``to_json`` is paid once per batch."""
    sizes = [len(p) for p in pages]
    if not sum(sizes):
        return [[] for _ in pages]
    if len({tuple(p.columns) for p in pages if len(p)}) > 1:  # unlike pages: one by one
        return [_records_many([p])[0] for p in pages]
    page = pd.concat([p for p in pages if len(p)], ignore_index=True)
    for column in page.columns:
        if pd.api.types.is_datetime64_any_dtype(page[column]):
            page[column] = page[column].map(iso_utc, na_action="ignore").astype("object")
    records = json.loads(page.to_json(orient="records"))
    ends = np.cumsum(sizes)
    return [records[end - n : end] for n, end in zip(sizes, ends, strict=True)]


def iso_utc(moment: pd.Timestamp) -> str:
    """The API's one timestamp format: ISO 8601, UTC, whole seconds, ``Z``."""
    t = pd.Timestamp(moment)
    t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


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
    408: "timeout",
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


class Guard:
    """ASGI middleware run before the app reads anything of the request's body.

    - 401 (connection closed) when a path other than :data:`OPEN_PATHS` lacks the bearer
      token, without reading the body;
    - 413 for bodies over ``max_bytes`` (declared, or counted as they arrive);
    - 408 (connection closed) when the body is not complete ``read_timeout_s`` after the
      request started (a client that stops sending does not hold a worker).
    """

    def __init__(self, app, *, token: str | None, max_bytes: int, read_timeout_s: float) -> None:
        self.app = app
        self.expected = token.encode() if token is not None else None
        self.max_bytes = max_bytes
        self.read_timeout_s = read_timeout_s

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        if scope["path"] not in OPEN_PATHS and not self._authorized(headers):
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
