"""``dealcast schedule``: serve a flow on its cron under a Prefect server, and stop cleanly.

Prefect's ``flow.serve`` keeps polling a server that has gone away (printing tracebacks)
and, on Ctrl-C, first pauses the deployment through that server, which then hangs for
minutes. Here the same Prefect runner serves the flow while a watchdog asks the server for
its health every ``check_seconds``: after ``misses`` failed checks in a row the runner stops
without calling the server and :class:`ServerGoneError` says so. Ctrl-C stops the runner
within a second or two: the deployment is paused on the server if it answers (so it piles
up no late runs while nobody serves it; the next ``dealcast schedule`` resumes it), else
left as it is. The tracebacks Prefect logs about the lost connection are dropped
(:class:`ConnectionNoise`): the one message is ours.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass

import anyio
import httpx

CHECK_SECONDS = 2.0  # between health checks
MISSES = 3  # failed checks in a row that mean the server has gone
HEALTH_TIMEOUT = 1.0  # one check's longest wait
STOP_SECONDS = 3.0  # longest wait for the runner to wind down

Health = Callable[[], Awaitable[bool]]
#: Opens what answers health checks (one client for all of them) for an event loop.
Checker = Callable[[], AbstractAsyncContextManager[Health]]


class NoServerError(Exception):
    """No Prefect server answers at the start."""


class ServerGoneError(Exception):
    """The Prefect server stopped answering while the flow was served."""


@dataclass
class Stopped:
    """How serving ended: the server went away (``gone``), else Ctrl-C; ``paused``: the
    deployment was paused on the server on the way out; ``error``: what the runner raised,
    if it ended by itself."""

    gone: bool = False
    paused: bool = False
    error: Exception | None = None


@asynccontextmanager
async def prefect_health(timeout: float = HEALTH_TIMEOUT) -> AsyncIterator[Health]:
    """Health checks of the Prefect API (``PREFECT_API_URL``) through one client: whether
    it answers within ``timeout`` (a check costs ~2 ms of CPU; a new client ~50 ms)."""
    from prefect.client.orchestration import get_client

    async with get_client() as client:

        async def answers() -> bool:
            with anyio.move_on_after(timeout):
                return await client.api_healthcheck() is None
            return False

        yield answers


async def answers_now(checker: Checker) -> bool:
    """One health check through a checker of its own."""
    async with checker() as health:
        return await health()


def serve_schedule(
    flow, *, name: str, schedule, when: str, parameters: dict, api_url: str,
    echo: Callable[[str], None], checker: Checker = prefect_health,
    check_seconds: float = CHECK_SECONDS, misses: int = MISSES,
) -> Stopped:  # fmt: skip
    """Serve ``flow`` as deployment ``name`` on ``schedule`` (``when`` says it in words)
    through the server at ``api_url`` (whatever Prefect's settings say) until Ctrl-C
    (returns how it stopped) or until the server stops answering
    (:class:`ServerGoneError`); :class:`NoServerError` if none answers at the start."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        if not asyncio.run(answers_now(checker)):
            raise NoServerError(f"no Prefect server answers at {api_url}")
        runner = _registered(flow, name=name, schedule=schedule, parameters=parameters)
        echo(f"serving {flow.name} {when} as '{flow.name}/{name}' on {api_url}; Ctrl-C stops")
        try:
            with quiet_connection_errors():
                stopped = asyncio.run(supervise(runner, checker, check_seconds, misses))
        except KeyboardInterrupt:  # a second Ctrl-C while winding down, or no signal handler
            return Stopped()
    if stopped.gone or is_connection_error(stopped.error):
        waited = f"{misses} health checks {check_seconds:g} s apart"
        raise ServerGoneError(f"the Prefect server at {api_url} stopped answering ({waited})")
    if stopped.error is not None:
        raise stopped.error
    return stopped


def _registered(flow, *, name: str, schedule, parameters: dict):
    """A Prefect runner with ``flow`` registered as deployment ``name`` on the server."""
    from prefect.runner import Runner

    runner = Runner(name=name, pause_on_shutdown=False)
    try:
        runner.add_flow(flow, name=name, schedule=schedule, parameters=parameters)
    except Exception as exc:
        if is_connection_error(exc):
            raise NoServerError("the Prefect server stopped answering") from None
        raise
    return runner


async def supervise(runner, checker: Checker, check_seconds: float, misses: int) -> Stopped:
    """Run ``runner`` until Ctrl-C, ``misses`` failed health checks in a row or its own end,
    then stop it (pausing its deployments only if the server answers), waiting at most
    :data:`STOP_SECONDS` for it to wind down."""
    stopped, stop, ended = Stopped(), anyio.Event(), anyio.Event()

    async def run() -> None:
        try:
            await runner.start()
        except Exception as exc:  # noqa: BLE001 - judged below, with the server's health
            stopped.error = exc
        finally:
            ended.set()
            stop.set()

    async def watch() -> None:
        stopped.gone = await gone_away(health, check_seconds, misses)
        stop.set()

    with _first_interrupt(stop.set):
        async with checker() as health, anyio.create_task_group() as group:
            group.start_soon(run)
            group.start_soon(watch)
            await stop.wait()
            await _wind_down(runner, stopped, health, ended)
            group.cancel_scope.cancel()
    return stopped


async def _wind_down(runner, stopped: Stopped, health: Health, ended: anyio.Event) -> None:
    """Stop ``runner`` (paused on the server only if that answers) within STOP_SECONDS."""
    if not stopped.gone:
        answering = await health()
        stopped.gone = ended.is_set() and not answering  # it ended because the server went
        stopped.paused = answering and not ended.is_set()
    runner.pause_on_shutdown = stopped.paused
    with anyio.move_on_after(STOP_SECONDS):
        if runner.started:
            await runner.astop()
        await ended.wait()


async def gone_away(health: Health, check_seconds: float, misses: int) -> bool:
    """Wait until ``misses`` health checks in a row fail; then True."""
    failed = 0
    while failed < misses:
        await anyio.sleep(check_seconds)
        failed = 0 if await health() else failed + 1
    return True


@contextmanager
def _first_interrupt(callback: Callable[[], object]) -> Iterator[None]:
    """The first Ctrl-C calls ``callback`` (a graceful stop); a second one interrupts."""
    loop = asyncio.get_running_loop()

    def once() -> None:
        loop.remove_signal_handler(signal.SIGINT)
        callback()

    try:
        loop.add_signal_handler(signal.SIGINT, once)
    except (NotImplementedError, RuntimeError, ValueError):  # Windows, not the main thread
        yield
        return
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGINT)


class ConnectionNoise(logging.Filter):
    """Drops log records whose exception is a lost connection (or caused by one), or a
    task cancelled on the way down: what Prefect's services log when the server goes."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not (isinstance(exc, asyncio.CancelledError) or is_connection_error(exc))


def is_connection_error(exc: BaseException | None) -> bool:
    """An OS-level, HTTP-transport or websocket failure, directly or as a cause."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, OSError | httpx.TransportError):
            return True
        if type(exc).__module__.startswith("websockets"):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


@contextmanager
def quiet_connection_errors() -> Iterator[None]:
    """:class:`ConnectionNoise` on the root's and Prefect's log handlers for the block."""
    named = list(logging.root.manager.loggerDict.items())
    loggers = [logging.root, *(lg for n, lg in named if n.startswith("prefect"))]
    handlers = {h for lg in loggers for h in getattr(lg, "handlers", [])}  # not placeholders
    noise = ConnectionNoise()
    for handler in handlers:
        handler.addFilter(noise)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(noise)
