"""What the ``dealcast`` commands share: the common options, clean error exits, params
loading and date parsing. Kept apart from :mod:`pipelines.cli` so the command modules can
import it without importing the ``app`` that registers them."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

ParamsOpt = Annotated[
    Path,
    typer.Option(
        "--params", help="Params file (funnel, paths, model settings).", show_default=True
    ),
]
AsOfOpt = Annotated[
    str | None,
    typer.Option("--as-of", help="Treat this date (YYYY-MM-DD or ISO timestamp) as 'now'."),
]


def handled(command: Callable) -> Callable:
    """Turn a step's input error into one clear message and exit code 2 (no traceback).

    A file-system error that no step turned into a message (a disk that filled up, a file
    that vanished, a name the file system refuses) also exits 2, naming the file. Each long
    step prints one line with its timing on stderr as it finishes (:mod:`pipelines.progress`).
    """

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from features.snapshots import TooManySnapshotsError
        from pipelines.progress import shown
        from pipelines.steps import StepError

        try:
            with shown(progress_line):
                return command(*args, **kwargs)
        except (StepError, TooManySnapshotsError) as exc:
            raise fail(str(exc)) from None
        except OSError as exc:
            raise fail(os_error_message(exc)) from None

    return wrapper


def progress_line(line: str) -> None:
    """A step's line, on stderr: stdout is the command's result."""
    typer.echo(line, err=True)


def os_error_message(exc: OSError) -> str:
    """``<file>: <reason>`` for an ``OSError`` (both files of a failed rename)."""
    names = [str(n) for n in (exc.filename, exc.filename2) if n is not None]
    reason = exc.strerror or str(exc)
    return f"{' -> '.join(names)}: {reason}" if names else f"file system error: {reason}"


def fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"dealcast: error: {message}", err=True)
    return typer.Exit(code)


def load_params(path: Path):
    """Params from ``path``, or a clean exit naming the problem."""
    from pipelines.params import ParamsError, load_params

    try:
        return load_params(path)
    except ParamsError as exc:
        raise fail(str(exc)) from None


def parse_when(value: str | None, *, option: str):
    """A user-given date or timestamp as a UTC ``pd.Timestamp`` (naive = UTC)."""
    import pandas as pd

    if value is None:
        return None
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise fail(f"{option} {value!r} is not a date; use YYYY-MM-DD") from None
    if ts is pd.NaT:
        raise fail(f"{option} {value!r} is not a date; use YYYY-MM-DD")
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


DataOpt = Annotated[Path | None, typer.Option("--data", help="CRM folder [params: paths.raw].")]
TrackOpt = Annotated[
    bool, typer.Option("--track/--no-track", help="Log the run and models to MLflow.")
]
