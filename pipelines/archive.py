"""The archive of what was said: each team-wide ``score`` and ``forecast`` run appends its
rows (:mod:`serving.archive`) to a partitioned Parquet store under ``paths.archive``, one
partition per scoring day (:func:`pipelines.catalog.archive_partition`).

Append-only per day: a run replaces only its own day's partition, with one atomic rename
of a single file (a reader sees the old day or the new one, never half of either), so
scoring the same day twice leaves the same rows (the same bytes). Owner-filtered runs
(``score --owner``) are never archived: they would replace the team-wide day with a few
deals. The store is history, built up run after run, not an output a stage recomputes:
it is not a DVC out (``dvc repro`` would delete it before re-running ``score``) and is
git-ignored with the rest of ``data/``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from crm.write import write_frame
from pipelines.catalog import (
    ARCHIVE_FORECAST,
    ARCHIVE_LEADS,
    archive_partition,
    archive_partitions,
)
from serving.archive import forecast_record, leads_record, scoring_day, stage_rate

log = logging.getLogger(__name__)

NOT_ARCHIVED = "not archived: the archive keeps team-wide runs only (this one has --owner)"


def not_archived(error: OSError) -> str:
    """The message when the archive cannot be written (the run's files are written)."""
    where = f"{error.filename}: " if error.filename else ""
    return f"not archived: {where}{error.strerror or error}"


def archive_leads(root: Path, leads: pd.DataFrame, *, as_of: pd.Timestamp, close) -> Path:
    """Archive one team-wide export of ``leads`` scored at ``as_of`` with the close model
    ``close`` (whose stage table gives ``p_win_stage_rate``); return the partition file."""
    rows = leads.assign(p_win_stage_rate=stage_rate(close, leads["stage"]))
    return _write(root, ARCHIVE_LEADS, leads_record(rows, as_of=as_of), as_of)


def archive_forecast(root: Path, run, *, horizon_days: int) -> Path:
    """Archive the forecast of a :class:`pipelines.forecasting.ForecastRun`."""
    record = forecast_record(run.forecast, as_of=run.as_of, horizon_days=horizon_days,
                             model_version=run.model_version,
                             data_fingerprint=run.data_fingerprint)  # fmt: skip
    return _write(root, ARCHIVE_FORECAST, record, run.as_of)


def _write(root: Path, kind: str, frame: pd.DataFrame, as_of: pd.Timestamp) -> Path:
    path = archive_partition(root, kind, scoring_day(as_of))
    write_frame(frame, path)  # atomic; the same frame gives the same bytes
    log.debug("archived %d %s rows of %s in %s", len(frame), kind, scoring_day(as_of), path)
    return path


def read_archive(root: Path, kind: str, *, until: pd.Timestamp | None = None) -> pd.DataFrame:
    """Every archived day of ``kind`` (up to ``until``'s day) as one frame, in day order;
    empty when there is none. ``OSError`` / ``ValueError`` when a partition is unreadable."""
    last = None if until is None else scoring_day(until)
    parts = [
        pd.read_parquet(path)
        for day, path in archive_partitions(root, kind).items()
        if last is None or day <= last
    ]
    parts = [part for part in parts if len(part)]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
