"""Time-ordered selection of training, calibration and test snapshots.

At a cutoff C (the date we pretend is today):

* training snapshots are those with ``as_of + H <= C`` (H = the label horizon), labelled
  with ``data_end = C``: every ``won_within_{H}d`` label is then known at C and none
  depends on anything after it (no censoring, no leak);
* the latest ``calibration_fraction`` of the training as-of dates form the calibration
  slice, strictly later than the rows the trees are fitted on;
* test snapshots are those strictly after C, labelled with the data's real end; rows whose
  label the data cannot know yet stay in the predictions but out of the metrics.

A deal can have training snapshots (from before it was open at C) and test snapshots:
that is the real use (scoring deals open today), honest because no training label looks
past C.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class TimeSplit:
    """Snapshot dates of each part."""

    fit: pd.DatetimeIndex
    calibration: pd.DatetimeIndex
    test: pd.DatetimeIndex

    @property
    def training(self) -> pd.DatetimeIndex:
        return self.fit.append(self.calibration)


def training_dates(
    dates: pd.DatetimeIndex, *, cutoff: pd.Timestamp, horizon_days: int
) -> pd.DatetimeIndex:
    """Snapshot dates whose H-day label window ends at or before the cutoff."""
    dates = pd.DatetimeIndex(dates).sort_values()
    return dates[dates + pd.Timedelta(days=horizon_days) <= cutoff]


def calibration_split(
    dates: pd.DatetimeIndex, *, calibration_fraction: float
) -> tuple[pd.DatetimeIndex, pd.DatetimeIndex]:
    """(earlier dates, latest ``calibration_fraction`` of dates), at least one date each
    when there are two or more dates."""
    dates = pd.DatetimeIndex(dates).sort_values()
    if len(dates) < 2:
        return dates, dates[:0]
    n_cal = min(max(1, math.ceil(calibration_fraction * len(dates))), len(dates) - 1)
    return dates[:-n_cal], dates[-n_cal:]


def time_split(
    dates: pd.DatetimeIndex,
    *,
    cutoff: pd.Timestamp,
    horizon_days: int,
    calibration_fraction: float,
) -> TimeSplit:
    """Fit / calibration / test dates at ``cutoff`` (see the module docstring)."""
    dates = pd.DatetimeIndex(dates).sort_values()
    fit, cal = calibration_split(
        training_dates(dates, cutoff=cutoff, horizon_days=horizon_days),
        calibration_fraction=calibration_fraction,
    )
    return TimeSplit(fit=fit, calibration=cal, test=dates[dates > cutoff])
