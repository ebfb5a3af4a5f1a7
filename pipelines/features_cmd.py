"""The ``features`` step: load a CRM folder, build point-in-time features and labels, write
``features.parquet`` and ``labels.parquet``.

Which snapshots: with ``as_of`` the single snapshot of that moment (what scoring uses);
without it the series of ``params.yaml`` (``features.freq`` from ``features.start``,
default the first deal's creation, to ``features.end``, default ``data_end``).
``data_end``, the moment the data was extracted, is ``features.data_end`` if set, else
the latest event timestamp in the data; with ``as_of`` it is at least ``as_of`` (the
user says "now" is as_of, so nothing later can be missing from the data).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from crm.schemas import Funnel
from crm.write import write_frame
from features.build import build_feature_set
from features.snapshots import snapshot_dates
from pipelines.catalog import features_files
from pipelines.params import FeaturesParams
from pipelines.progress import step
from pipelines.steps import StepError, as_utc, clock_of, data_end_of, load_usable, spec_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FeaturesRun:
    """What ``run_features`` built and wrote."""

    as_of_dates: pd.DatetimeIndex
    data_end: pd.Timestamp
    files: dict[str, tuple[Path, int]]
    n_features: int


def run_features(
    *,
    folder: Path,
    out: Path,
    funnel: Funnel,
    settings: FeaturesParams,
    as_of: pd.Timestamp | None,
) -> FeaturesRun:
    """Build and write features and labels; raise ``StepError`` if the data is unusable."""
    data = load_usable(folder, funnel=funnel, data_end=settings.data_end, clock=clock_of(None))
    data_end = data_end_of(data, data_end=settings.data_end)
    if as_of is not None:
        data_end, dates = max(data_end, as_of), pd.DatetimeIndex([as_of])
    else:
        start = as_utc(settings.start) if settings.start else data.deals["created_at"].min()
        end = as_utc(settings.end) if settings.end else data_end
        dates = snapshot_dates(start, end, settings.freq)
    if len(dates) and dates.max() > data_end:
        raise StepError(f"the last snapshot {dates.max()} is after data_end {data_end}")
    log.debug("building features for %d snapshot(s), data_end %s", len(dates), data_end)
    with step(f"built features and labels at {len(dates):,} snapshot(s)"):
        built = build_feature_set(
            data, as_of_dates=dates, funnel=funnel, horizons_days=settings.horizons_days,
            data_end=data_end, **spec_of(settings).build_kwargs(),
        )  # fmt: skip
    files = {}
    for name, path in features_files(out).items():
        frame = built.features if name == "features" else built.labels
        write_frame(frame, path)
        files[name] = (path, len(frame))
    return FeaturesRun(dates, data_end, files, built.features.shape[1] - 2)
