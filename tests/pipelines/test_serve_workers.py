"""``serve.workers > 1``: worker processes (spawned) sharing the port, a socket each."""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pandas as pd

from pipelines import serve as serve_module
from pipelines.params import load_params
from pipelines.serve_http import HeadTimeout, ServeConfig

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import os, sys
from pipelines.serve_http import listen, serve

class PidApp:  # answers with the worker's pid; picklable (module level)
    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            await receive()
            if os.environ.get("FAIL_START"):
                return await send({"type": "lifespan.startup.failed", "message": "no data"})
            await send({"type": "lifespan.startup.complete"})
            await receive()
            return await send({"type": "lifespan.shutdown.complete"})
        body = str(os.getpid()).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

if __name__ == "__main__":
    sock = listen("127.0.0.1", int(sys.argv[1]))
    sys.exit(serve(PidApp(), sock, read_timeout_s=5, workers=2))
"""


def _run(tmp_path: Path, port: int, **env) -> subprocess.Popen:
    script = tmp_path / "workers_app.py"
    script.write_text(textwrap.dedent(SCRIPT))
    return subprocess.Popen(
        [sys.executable, str(script), str(port)], cwd=tmp_path, stderr=subprocess.PIPE,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), **env}, text=True,
    )  # fmt: skip


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_workers_serve_the_one_socket_and_stop_on_sigint(tmp_path):
    port = _free_port()
    server = _run(tmp_path, port)
    try:
        deadline, pid = time.monotonic() + 120, None
        while pid is None and time.monotonic() < deadline:
            try:
                pid = int(httpx.get(f"http://127.0.0.1:{port}/", timeout=2).text)
            except httpx.HTTPError:
                time.sleep(0.2)
        assert pid is not None and pid != server.pid  # answered by a worker process
    finally:
        server.send_signal(2)
        code = server.wait(timeout=60)
    log = server.stderr.read()
    assert code == 0
    assert log.count("Started server process") == 2, log


def test_connections_opened_at_once_are_spread_over_the_workers(tmp_path):
    port = _free_port()
    server = _run(tmp_path, port)
    try:
        deadline, pids = time.monotonic() + 120, []
        while len(set(pids)) < 2 and time.monotonic() < deadline:
            clients = [httpx.Client(base_url=f"http://127.0.0.1:{port}") for _ in range(20)]
            try:
                pids = [int(c.get("/", timeout=2).text) for c in clients]
            except httpx.HTTPError:
                time.sleep(0.2)  # not started yet
            finally:
                for c in clients:
                    c.close()
        assert len(set(pids)) == 2, pids  # each worker listens: the kernel spreads them
        assert min(pids.count(p) for p in set(pids)) >= 3, pids
    finally:
        server.send_signal(2)
        server.wait(timeout=60)


def test_a_worker_that_cannot_start_stops_the_server_with_the_failure_code(tmp_path):
    server = _run(tmp_path, _free_port(), FAIL_START="1")
    code = server.wait(timeout=120)
    log = server.stderr.read()
    assert code == 3, log  # uvicorn's STARTUP_FAILURE: run_serve turns it into exit 2
    assert "no data" in log


def test_the_worker_app_and_the_config_travel_to_a_spawned_worker():
    params = load_params(ROOT / "params.yaml")
    app = serve_module.WorkerApp(
        folder=Path("data/raw"), params=params, as_of=pd.Timestamp("2026-06-30", tz="UTC"),
        token="t" * 40,
    )  # fmt: skip
    again = pickle.loads(pickle.dumps(app))
    assert again == app and "_app" not in again.__dict__
    config = pickle.loads(pickle.dumps(ServeConfig(app, read_timeout_s=7.0, http=HeadTimeout)))
    assert config.read_timeout_s == 7.0 and config.http is HeadTimeout
    assert params.serve.workers >= 1
