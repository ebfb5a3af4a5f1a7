"""The pipeline's steps as plain functions: params in, library calls, disk out.

The CLI commands and the Prefect flows both call these, so a step behaves the same
whichever way it is run, and tests can call them without Prefect.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import pandas as pd

from crm.load import LoadResult, load_crm
from crm.schemas import Funnel

log = logging.getLogger(__name__)
Echo = Callable[[str], None]


class StepError(Exception):
    """A step cannot go on because of its input; the message says what to fix."""


def run_generate(
    *,
    funnel: Funnel,
    out: Path,
    truth: Path | None,
    n_deals: int,
    seed: int,
    start: pd.Timestamp,
    as_of: pd.Timestamp,
    fmt: Literal["csv", "parquet"],
    messy: bool,
) -> dict[str, tuple[Path, int]]:
    """Generate a synthetic CRM into ``out`` (and its hidden truth into ``truth``).

    Returns table name -> (file, rows). The truth file must live outside the data folder,
    so a model pointed at the folder can never read it.
    """
    from crm.synthetic import generate_crm
    from crm.write import write_crm, write_frame

    if truth is not None and _is_inside(truth, out):
        raise StepError(f"--truth {truth} is inside the data folder {out}; put it elsewhere")
    if start >= as_of:
        raise StepError(f"start {start.date()} must be before as_of {as_of.date()}")
    log.info("generating %s deals (seed %s, %s to %s)", n_deals, seed, start.date(), as_of.date())
    crm = generate_crm(
        n_deals=n_deals, seed=seed, start=start, as_of=as_of, funnel=funnel, messy=messy
    )
    paths = write_crm(crm.data, out, fmt=fmt)
    written = {name: (path, len(crm.data.table(name))) for name, path in paths.items()}
    if truth is not None:
        write_frame(crm.truth, truth)
        written["truth"] = (truth, len(crm.truth))
    return written


def as_utc(value) -> pd.Timestamp:
    """A date or timestamp (string, date, Timestamp) as a UTC ``pd.Timestamp``; naive = UTC."""
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def data_end_of(data, *, data_end: object | None) -> pd.Timestamp:
    """When the data was extracted: ``features.data_end`` if set, else its latest event."""
    from features.snapshots import latest_timestamp

    return as_utc(data_end) if data_end else latest_timestamp(data)


def load_and_validate(folder: Path, *, funnel: Funnel, as_of: pd.Timestamp | None) -> LoadResult:
    """Read and check a CRM folder; never raises for bad data (see ``LoadResult.report``)."""
    return load_crm(Path(folder), funnel=funnel, as_of=as_of)


def indent(text: str) -> str:
    """Text shifted under a progress line."""
    return "\n".join(f"      {line}" if line else "" for line in text.splitlines())


def _is_inside(path: Path, folder: Path) -> bool:
    return Path(folder).resolve() in Path(path).resolve().parents
