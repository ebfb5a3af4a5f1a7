"""``dealcast schedule`` stops cleanly: on Ctrl-C at once, with one message when the Prefect
server goes away. A stub runner and stub health checks stand in for Prefect's."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import socket
import time
from contextlib import asynccontextmanager

import anyio
import httpx
import pytest
from typer.testing import CliRunner

from pipelines import schedule
from pipelines.cli import app
from pipelines.schedule import ConnectionNoise, Stopped, is_connection_error, supervise


class StubRunner:
    """Serves until stopped, like ``prefect.runner.Runner.start``; ``stop_hangs`` mimics a
    runner whose shutdown waits on a server that has gone."""

    def __init__(self, *, stop_hangs: bool = False) -> None:
        self.started, self.stopped, self.stop_hangs = False, anyio.Event(), stop_hangs
        self.pause_on_shutdown = None

    async def start(self) -> None:
        self.started = True
        await self.stopped.wait()
        if self.stop_hangs:
            await anyio.sleep(3600)

    async def astop(self) -> None:
        self.started = False
        self.stopped.set()


def checker(answers):
    """A checker whose health checks return ``answers`` in turn (the last one forever)."""
    answers = list(answers)

    @asynccontextmanager
    async def opened():
        async def health() -> bool:
            return answers.pop(0) if len(answers) > 1 else answers[0]

        yield health

    return opened


def _supervise(
    runner, answers, *, interrupt_after: float | None = None, every: float = 0.01
) -> tuple[Stopped, float]:
    async def main() -> Stopped:
        if interrupt_after is not None:
            loop = asyncio.get_running_loop()
            loop.call_later(interrupt_after, os.kill, os.getpid(), signal.SIGINT)
        return await supervise(runner, checker(answers), check_seconds=every, misses=3)

    started = time.perf_counter()
    stopped = asyncio.run(main())
    return stopped, time.perf_counter() - started


def test_a_server_that_goes_away_stops_the_runner_without_calling_it():
    runner = StubRunner()
    stopped, seconds = _supervise(runner, [True, True, False, True, False, False, False])
    assert stopped.gone and not stopped.paused
    assert runner.pause_on_shutdown is False  # no pause through a server that has gone
    assert runner.stopped.is_set() and seconds < 2


def test_ctrl_c_stops_at_once_and_pauses_the_schedule_on_a_live_server():
    runner = StubRunner()
    stopped, seconds = _supervise(runner, [True], interrupt_after=0.2)
    assert not stopped.gone and stopped.paused and runner.pause_on_shutdown is True
    assert seconds < 1.5
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler removed


def test_ctrl_c_without_a_server_does_not_try_to_pause():
    runner = StubRunner()
    stopped, _ = _supervise(runner, [False], interrupt_after=0.05, every=60)
    assert not stopped.gone
    assert not stopped.paused and runner.pause_on_shutdown is False


def test_a_runner_that_hangs_on_stop_is_given_up_after_a_bound(monkeypatch):
    monkeypatch.setattr(schedule, "STOP_SECONDS", 0.3)
    stopped, seconds = _supervise(StubRunner(stop_hangs=True), [True], interrupt_after=0.1)
    assert stopped.paused and seconds < 1.5


def test_the_lost_connection_noise_is_dropped_and_other_errors_kept():
    def record(exc: BaseException | None) -> logging.LogRecord:
        info = (type(exc), exc, None) if exc else None
        return logging.LogRecord("prefect.x", logging.WARNING, "", 0, "m", (), info)

    try:
        try:
            raise ConnectionRefusedError(111, "refused")
        except OSError as cause:
            raise RuntimeError("Service exceeded error threshold.") from cause
    except RuntimeError as exc:
        chained = exc
    noise = ConnectionNoise()
    for exc in (httpx.ConnectError("x"), chained, asyncio.CancelledError()):
        assert not noise.filter(record(exc)), exc
    for exc in (ValueError("a real bug"), None):
        assert noise.filter(record(exc))
    assert not is_connection_error(None)


runner_cli = CliRunner()


@pytest.fixture(autouse=True)
def _unfreeze():
    """The command freezes the garbage collector on its way out (a quick exit); not here."""
    yield
    gc.unfreeze()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_schedule_without_a_server_at_the_url_is_one_clean_error(params_file, monkeypatch):
    import prefect.runner

    url = f"http://127.0.0.1:{_free_port()}/api"  # nothing listens there
    monkeypatch.setenv("PREFECT_API_URL", url)
    monkeypatch.setattr(prefect.runner, "Runner", None)  # never serve, whatever answers
    result = runner_cli.invoke(app, ["schedule", "--params", str(params_file)])
    assert result.exit_code == 2, result.output
    assert f"no Prefect server answers at {url}" in result.output
    assert "Traceback" not in result.output


def test_schedule_exits_1_with_one_message_when_the_server_goes(params_file, monkeypatch):
    def gone(*args, **kwargs):
        raise schedule.ServerGoneError("the Prefect server at http://x/api stopped answering")

    monkeypatch.setenv("PREFECT_API_URL", "http://x/api")
    monkeypatch.setattr(schedule, "serve_schedule", gone)
    result = runner_cli.invoke(app, ["schedule", "--params", str(params_file)])
    assert result.exit_code == 1
    (line,) = [line for line in result.output.splitlines() if "error" in line]
    assert "stopped answering" in line and "rerun `dealcast schedule`" in line


@pytest.mark.parametrize(("paused", "says"), [(True, "paused on the server"), (False, "not")])
def test_schedule_says_how_it_stopped(params_file, monkeypatch, paused, says):
    monkeypatch.setenv("PREFECT_API_URL", "http://x/api")
    monkeypatch.setattr(schedule, "serve_schedule", lambda *a, **k: Stopped(paused=paused))
    result = runner_cli.invoke(app, ["schedule", "--params", str(params_file)])
    assert result.exit_code == 0 and says in result.output.splitlines()[-1]
