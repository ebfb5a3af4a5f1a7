"""A project file lock: one ``dealcast train`` at a time per project folder.

Two trains at once would interleave their registrations and alias moves in the model
registry and overwrite each other's backtest reports. The lock is an advisory ``flock`` on
``.dealcast/<name>.lock`` in the project folder (where ``mlflow.db`` lives): the kernel
drops it when the holding process dies, even by ``kill -9``, so a crash never leaves a
stale lock behind. The file records who holds it, for the message the second one prints.
"""

from __future__ import annotations

import fcntl
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from pipelines.catalog import lock_file
from pipelines.steps import StepError

WAIT_SECONDS = 5.0
"""How long a second train waits for the first before giving up: long enough to ride over
a train that is just finishing, short enough not to look hung."""


class LockBusyError(StepError):
    """Another process holds the lock; the message says who and since when (a
    ``StepError``: the command exits 2 with it)."""


@contextmanager
def project_lock(project: Path, name: str, *, wait_seconds: float = WAIT_SECONDS) -> Iterator[Path]:
    """Hold ``<project>/.dealcast/<name>.lock`` for the ``with`` block.

    Waits up to ``wait_seconds`` for another holder, then raises :class:`LockBusyError`.
    """
    path = lock_file(project, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _acquire(fd, path, name, wait_seconds)
        holder = f"pid {os.getpid()} on {socket.gethostname()} since {_now()}\n"
        os.ftruncate(fd, 0)
        os.pwrite(fd, holder.encode(), 0)
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _acquire(fd: int, path: Path, name: str, wait_seconds: float) -> None:
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                break
            time.sleep(0.2)
    holder = path.read_text(encoding="utf-8", errors="replace").strip() or "another process"
    raise LockBusyError(
        f"another dealcast {name} is running in this project ({holder}; lock {path}); "
        f"wait for it to finish, then run again"
    )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
