"""The HTTP shell of ``dealcast serve``: the listening socket and the uvicorn server.

The socket is opened *before* the CRM and the champion are loaded, so a wrong host or a
busy port fails in a second with a clear message instead of after minutes of loading.
The server speaks HTTP/1.1 with h11 plus one guard uvicorn lacks: a client that connects
and then sends nothing, or only part of a request head, is disconnected after
``read_timeout_s`` (the app's own guard, ``serving.api.Guard``, bounds the body).

With several worker processes each listens on a socket of its own, bound to the same
address with ``SO_REUSEPORT`` (:class:`PortShare`), so the kernel spreads the
connections over the workers evenly; with one shared socket, the worker whose event loop
wakes first takes every connection waiting (a burst of clients went 13 / 37).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
from pathlib import Path

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.supervisors import Multiprocess

#: How long a worker may take to answer the supervisor's liveness ping (a loaded machine
#: answers slowly; uvicorn's default of 5 s would kill and restart busy workers).
WORKER_HEALTHCHECK_S = 60


def swagger_ui_files() -> dict[str, bytes]:
    """The Swagger UI files ``/docs`` serves (``serving.api_docs.SWAGGER_FILES``), read
    from the installed ``swagger-ui-bundle-v2`` package."""
    import swagger_ui_bundle

    from serving.api_docs import SWAGGER_FILES

    folder = Path(swagger_ui_bundle.swagger_ui_path)
    return {name: (folder / name).read_bytes() for name in SWAGGER_FILES}


class ServeConfig(uvicorn.Config):
    """uvicorn's config plus the request-head timeout :class:`HeadTimeout` reads."""

    def __init__(self, app, *, read_timeout_s: float, **kwargs) -> None:
        super().__init__(app, **kwargs)
        self.read_timeout_s = read_timeout_s


class ListenError(OSError):
    """The host/port cannot be listened on (unknown host, port busy, not allowed)."""


def bare_host(host: str) -> str:
    """``[::1]`` -> ``::1`` (the URL form of an IPv6 address is accepted as the address)."""
    host = host.strip()
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def url_of(host: str, port: int) -> str:
    host = bare_host(host)
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host``:``port`` (not yet listening); :class:`ListenError` with a
    readable reason otherwise."""
    host = bare_host(host)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ListenError(
            f"--host {host!r} is not a known host or address ({exc.strerror})"
        ) from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise ListenError(f"cannot listen on {url_of(host, port)}: {exc.strerror}") from None
    sock.set_inheritable(True)
    return sock


class HeadTimeout(H11Protocol):
    """uvicorn's h11 protocol closing connections whose request head does not arrive (or
    is not complete) within ``config.read_timeout_s`` (:class:`ServeConfig`) of connecting
    or of the previous response. Module-level, so a worker process can unpickle it."""

    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        super().connection_lost(exc)

    def _timeout(self) -> float:
        return self.config.read_timeout_s

    def _arm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = self.loop.call_later(self._timeout(), self._expired)

    def _expired(self) -> None:
        idle = self.cycle is None or self.cycle.response_complete
        if idle and not self.transport.is_closing():
            self.transport.close()


class PortShare:
    """The listening socket's stand-in for the worker processes of :func:`serve`:
    unpickled in a worker as that worker's own socket (:func:`reuse_port_socket`).

    The parent's socket, bound without ``SO_REUSEPORT`` and never listening, keeps the
    port: another server cannot take it, and the workers' sockets (``SO_REUSEADDR``)
    may share it."""

    def __init__(self, sock: socket.socket) -> None:
        self.family, self.address = sock.family, sock.getsockname()

    def __reduce__(self):
        return reuse_port_socket, (self.family, self.address)


def reuse_port_socket(family: int, address: tuple) -> socket.socket:
    """A socket bound to ``address`` with ``SO_REUSEPORT`` (uvicorn makes it listen);
    a worker that cannot bind exits with uvicorn's startup failure code."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        logging.getLogger(__name__).error("a worker cannot listen on %s: %s", address, exc)
        sys.exit(STARTUP_FAILURE)
    return sock


def _worker_sockets(sock: socket.socket) -> list:
    """What the worker processes listen on: a socket each where the system can share a
    port between sockets (:class:`PortShare`), else the one socket."""
    return [PortShare(sock)] if hasattr(socket, "SO_REUSEPORT") else [sock]


def head_timeout_protocol(read_timeout_s: float) -> type[H11Protocol]:
    """:class:`HeadTimeout` with a fixed ``read_timeout_s`` (for a plain ``uvicorn.Config``)."""

    class FixedHeadTimeout(HeadTimeout):
        def _timeout(self) -> float:
            return read_timeout_s

    return FixedHeadTimeout


def serve(app, sock: socket.socket, *, read_timeout_s: float, workers: int = 1) -> int:
    """Serve ``app`` on the bound ``sock`` until interrupted; 0, or uvicorn's startup
    failure code when a worker could not start.

    ``workers > 1``: that many worker processes (uvicorn's supervisor, ``spawn``), each
    calling ``app`` on its own and listening on its own socket (:class:`PortShare`);
    ``app`` must then be picklable (``pipelines.serve.WorkerApp``
    loads the CRM and the champion in each worker at its start).
    """
    config = ServeConfig(
        app,
        log_level="info",
        server_header=False,
        http=HeadTimeout,
        timeout_keep_alive=min(5, read_timeout_s),
        workers=workers,
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_S,
        read_timeout_s=read_timeout_s,
    )
    if workers == 1:
        server = uvicorn.Server(config)
        server.run(sockets=[sock])
        return 0 if server.started else STARTUP_FAILURE
    supervisor = Multiprocess(config, sockets=_worker_sockets(sock))
    supervisor.run()
    failed = any(p.exitcode == STARTUP_FAILURE for p in supervisor.processes)
    return STARTUP_FAILURE if failed else 0
