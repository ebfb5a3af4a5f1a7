"""Benchmark: ``POST /score`` latency at 50 concurrent clients, and ``/health`` under load.

Starts ``dealcast serve`` on 127.0.0.1 on a free port (loopback only, a fresh random token)
in a project folder that already has a champion (``dealcast train``) and a CRM
(``paths.raw``), waits until it answers, then sends a bounded number of ``POST /score``
requests from ``--concurrency`` clients at once (each posts a real open deal's own rows:
half as new deals under a new id, half reposted unchanged under their own id, which the
server answers from today's ranked list; each client its own keep-alive connection),
while a probe calls ``/health`` every 0.2 s. Prints median / p90 / p99 / max latency of
both, errors, and the server's start time and CPU time per request (the figure that does
not depend on what else the machine runs); then stops the server. Target on a 2-core
machine: ``/score`` p99 under 1 s at 50 concurrent requests, ``/health`` p99 well under 1 s.

    cd PROJECT && /path/to/.venv/bin/python /path/to/benchmarks/bench_api.py \
        [--requests 500] [--concurrency 50] [--params params.yaml]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import secrets
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pandas as pd

from crm.load import load_crm
from pipelines.params import load_params

HEALTH_EVERY_S = 0.2
START_TIMEOUT_S = 900
#: One SSL context for all the clients (unused on loopback HTTP, but httpx would load the
#: certificate store once per client otherwise).
_SHARED_TLS = ssl.create_default_context()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _records(frame: pd.DataFrame) -> list[dict]:
    rows = json.loads(frame.to_json(orient="records", date_format="iso"))
    return [{k: v for k, v in row.items() if v is not None} for row in rows]


def bodies(params_path: Path, deal_ids: list[str], n: int) -> list[dict]:
    """``n`` request bodies cycling over ``deal_ids``: every other one as a new deal."""
    p = load_params(params_path)
    data = load_crm(p.paths.raw, funnel=p.funnel.to_funnel(), as_of=None).data
    by_deal = {
        name: dict(tuple(frame.groupby(frame["deal_id"].astype("str"))))
        for name, frame in (
            ("stage_history", data.stage_history),
            ("touchpoints", data.touchpoints),
        )
        if frame is not None
    }
    deals = data.deals.set_index(data.deals["deal_id"].astype("str"), drop=False)
    out = []
    for i in range(n):
        deal_id = deal_ids[i % len(deal_ids)]
        body = {"deal": _records(deals.loc[[deal_id]])[0]}
        for name, groups in by_deal.items():
            body[name] = _records(groups[deal_id]) if deal_id in groups else []
        if i % 2:  # the same rows as a new deal
            new = f"BENCH-{i}"
            body["deal"]["deal_id"] = new
            body["stage_history"] = [r | {"deal_id": new} for r in body.get("stage_history", [])]
            body["touchpoints"] = [r | {"deal_id": new} for r in body.get("touchpoints", [])]
        out.append(body)
    return out


def start_server(port: int, token: str, params: Path, log: Path) -> subprocess.Popen:
    exe = Path(sys.executable).with_name("dealcast")
    env = os.environ | {"DEALCAST_API_TOKEN": token}
    cmd = [str(exe), "serve", "--host", "127.0.0.1", "--port", str(port), "--params", str(params)]
    with log.open("wb") as sink:  # a file, not a pipe: the access log never blocks the server
        return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=sink)


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def cpu_seconds(pid: int) -> float:
    """User + system CPU time so far of a process, its threads and its live child
    processes (the workers of ``serve.workers``); NaN without /proc."""
    pids = {pid}
    for entry in Path("/proc").iterdir() if Path("/proc/self").exists() else ():
        fields = _stat(int(entry.name)) if entry.name.isdigit() else None
        if fields is not None and int(fields[1]) == pid:  # a child of the server
            pids.add(int(entry.name))
    total, seen = 0.0, False
    for p in pids:
        if (fields := _stat(p)) is not None:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            seen = True
    return total if seen else float("nan")


def wait_ready(base: str, server: subprocess.Popen, log: Path, workers: int) -> float:
    """Seconds until ``/health`` answers and every worker has said it started."""
    started = time.perf_counter()
    while time.perf_counter() - started < START_TIMEOUT_S:
        if server.poll() is not None:
            raise SystemExit(f"the server exited:\n{log.read_text()[-3000:]}")
        try:
            up = httpx.get(f"{base}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            up = False
        if up and log.read_text().count("Application startup complete") >= workers:
            return time.perf_counter() - started
        time.sleep(0.25)
    raise SystemExit(f"the server did not answer within {START_TIMEOUT_S} s")


async def load(base: str, token: str, work: list[dict], concurrency: int) -> dict:
    """Send ``work`` from ``concurrency`` clients; probe /health meanwhile."""
    queue: asyncio.Queue = asyncio.Queue()
    for body in work:
        queue.put_nowait(body)
    score_ms: dict[str, list[float]] = {"new": [], "repost": []}
    health_ms: list[float] = []
    statuses: dict[int | str, int] = {}
    headers = {"Authorization": f"Bearer {token}"}
    clients = [_client(base) for _ in range(concurrency + 1)]

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            body = queue.get_nowait()
            t = time.perf_counter()
            try:
                r = await client.post("/score", json=body, headers=headers)
                key: int | str = r.status_code
            except httpx.HTTPError as exc:
                key = type(exc).__name__
            kind = "new" if body["deal"]["deal_id"].startswith("BENCH-") else "repost"
            score_ms[kind].append((time.perf_counter() - t) * 1000)
            statuses[key] = statuses.get(key, 0) + 1

    async def probe(client: httpx.AsyncClient, done: asyncio.Event) -> None:
        while not done.is_set():
            t = time.perf_counter()
            with contextlib.suppress(httpx.HTTPError):
                await client.get("/health", timeout=30)
            health_ms.append((time.perf_counter() - t) * 1000)
            await asyncio.sleep(HEALTH_EVERY_S)

    try:
        done = asyncio.Event()
        prober = asyncio.create_task(probe(clients[-1], done))
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(c) for c in clients[:-1]))
        wall = time.perf_counter() - t0
        done.set()
        await prober
    finally:
        for client in clients:
            await client.aclose()
    return {"score": score_ms, "health": health_ms, "statuses": statuses, "wall": wall}


def _client(base: str) -> httpx.AsyncClient:
    """One client with one keep-alive connection: one pool shared by all the clients
    costs the benchmark itself ~10 ms of CPU per request at 50 connections (httpcore
    scans every connection of the pool for each request), taken from the server under
    test on a small machine. Loopback HTTP: no certificates are loaded."""
    return httpx.AsyncClient(
        base_url=base, limits=httpx.Limits(max_connections=1), timeout=120, verify=_SHARED_TLS
    )


def summary(name: str, ms: list[float]) -> str:
    if not ms:
        return f"{name}: no requests"
    q = statistics.quantiles(ms, n=100, method="inclusive") if len(ms) > 1 else ms * 99
    return (
        f"{name:<8} n={len(ms):>5}  median {statistics.median(ms):8.1f} ms  p90 {q[89]:8.1f} ms"
        f"  p99 {q[98]:8.1f} ms  max {max(ms):8.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args()
    port, token = free_port(), secrets.token_hex(32)
    base = f"http://127.0.0.1:{port}"
    workers = load_params(args.params).serve.workers
    log = Path(tempfile.mkdtemp(prefix="bench_api_")) / "server.log"
    server = start_server(port, token, args.params, log)
    try:
        started = wait_ready(base, server, log, workers)
        ranked = httpx.get(
            f"{base}/deals?limit=200", headers={"Authorization": f"Bearer {token}"}
        ).json()
        ids = [d["deal_id"] for d in ranked["deals"]]
        work = bodies(args.params, ids, args.requests)
        cpu = cpu_seconds(server.pid)
        result = asyncio.run(load(base, token, work, args.concurrency))
        cpu = cpu_seconds(server.pid) - cpu
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    print(
        f"server ready after {started:.1f} s ({workers} worker process(es)); "
        f"{len(ids)} open deals cycled; server log {log}"
    )
    print(
        f"{args.requests} POST /score at {args.concurrency} concurrent: {result['wall']:.1f} s, "
        f"{args.requests / result['wall']:.1f} req/s, statuses {result['statuses']}"
    )
    print(summary("/score", result["score"]["new"] + result["score"]["repost"]))
    print(summary("  new", result["score"]["new"]))
    print(summary("  repost", result["score"]["repost"]))
    print(summary("/health", result["health"]))
    sizes = [int(m) for m in re.findall(r"scored a batch of (\d+) bodies", log.read_text())]
    if sizes:
        print(f"{len(sizes)} batches (server log): sizes {sizes}")
    if cpu == cpu:  # not NaN: /proc was readable
        print(
            f"server CPU {cpu:.1f} s during the load: {1000 * cpu / args.requests:.1f} ms per "
            f"POST /score (about {args.requests / cpu:.0f} req/s per idle core); "
            f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
        )


if __name__ == "__main__":
    main()
