"""One line per finished step, with its timing, as dbt and Kedro print their nodes.

A long step marks itself with ``with step("fitted the model to serve") as done:`` (and may
set ``done.detail`` once it knows more). A ``dealcast`` command shows the lines as they
come (:func:`shown`, set up by :func:`pipelines.cli_common.handled`) on stderr, so stdout
keeps only the command's result (``--json``, a redirected export listing); anywhere else (a
scheduled Prefect run, a notebook) they are INFO log lines of this module. A step that
raises prints nothing: the error message says what failed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

log = logging.getLogger(__name__)
_shown_by: list[Callable[[str], None]] = []


@dataclass
class Step:
    """A step under way: what it does, what it found (``detail``) and how long it took."""

    what: str
    detail: str = ""
    seconds: float = 0.0

    def line(self) -> str:
        text = f"{self.what}: {self.detail}" if self.detail else self.what
        return f"{duration(self.seconds):>10}  {text}"


def duration(seconds: float) -> str:
    """``0.4 s``, ``12.3 s``, ``3 min 05 s``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"


@contextmanager
def shown(echo: Callable[[str], None]) -> Iterator[None]:
    """Within the block, step lines go to ``echo`` (the innermost block's)."""
    _shown_by.append(echo)
    try:
        yield
    finally:
        _shown_by.pop()


@contextmanager
def step(what: str) -> Iterator[Step]:
    """Time the block; when it ends without an error, show its line."""
    done, started = Step(what), time.perf_counter()
    yield done
    done.seconds = time.perf_counter() - started
    (_shown_by[-1] if _shown_by else log.info)(done.line())
