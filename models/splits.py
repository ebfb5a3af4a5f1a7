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

import numpy as np
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


def holdout_masks(
    as_of: pd.Series, deal_id: pd.Series, *, calibration_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(fit rows, calibration rows) with no deal on both sides.

    Snapshots of one deal are not independent (its label rarely changes from week to
    week), so a calibration or guard slice that shares deals with the fit rewards trees
    that memorise deals. Half of the deals seen in the latest ``calibration_fraction`` of
    dates (seeded) are held out: their rows on those dates are the calibration rows, and
    none of their rows is fitted on. The fit rows are the other deals' earlier rows.
    """
    dates = pd.DatetimeIndex(pd.unique(as_of))
    _, cal_dates = calibration_split(dates, calibration_fraction=calibration_fraction)
    late = np.asarray(pd.DatetimeIndex(as_of).isin(cal_dates))
    deals = np.asarray(deal_id, dtype=str)
    candidates = np.unique(deals[late])
    rng = np.random.default_rng(seed)
    held = candidates[rng.permutation(len(candidates))[: (len(candidates) + 1) // 2]]
    is_held = np.isin(deals, held)
    return ~late & ~is_held, late & is_held


class ShortHistoryError(ValueError):
    """The history is too short for a backtest with these settings (the message says why
    and what to change)."""


def backtest_cutoff(
    dates: pd.DatetimeIndex,
    *,
    data_end: pd.Timestamp,
    horizon_days: int,
    test_days: int,
    won_at: pd.Series,
    lost_at: pd.Series,
    min_events: int = 20,
    min_train_share: float = 0.5,
    min_test_dates: int = 2,
) -> pd.Timestamp:
    """The default backtest cutoff, chosen from the data.

    Test snapshots need ``horizon_days`` of follow-up before ``data_end`` to have a known
    outcome, so the last useful test date is ``data_end - H``. The cutoff is ``test_days``
    before that, moved later when that would leave the training part less than
    ``min_train_share`` of the usable history (short histories: the test window shrinks
    instead), or fewer than ``min_events`` recorded wins and losses (``won_at`` /
    ``lost_at``: close times) before it. Raises :class:`ShortHistoryError`, naming the
    dates and the settings to change, when not even ``min_test_dates`` test snapshot dates
    are left after that.
    """
    dates = pd.DatetimeIndex(dates).sort_values()
    last_test = data_end - pd.Timedelta(days=horizon_days)
    usable = dates[dates <= last_test]
    first = dates.min() if len(dates) else data_end
    if len(usable) < min_test_dates + 2:
        raise ShortHistoryError(
            f"the history from {first.date()} to {data_end.date()} is too short to backtest "
            f"a {horizon_days}-day horizon: test snapshots need {horizon_days} days of "
            f"follow-up, so the last one would be {last_test.date()}. Use a shorter "
            "train.horizon_days (one of features.horizons_days), or pass --as-of DATE for a "
            "cutoff of your own"
        )
    cutoff = last_test - pd.Timedelta(days=test_days)
    floor = first + (last_test - first) * min_train_share
    cutoff = max(cutoff, floor)
    latest_allowed = usable[-min_test_dates - 1]
    enough = _kth_close(won_at, min_events), _kth_close(lost_at, min_events)
    if max(enough) > latest_allowed:
        which = "wins" if enough[0] >= enough[1] else "losses"
        late = max(enough)
        when = (
            "are not recorded in the whole history"
            if late == NEVER
            else f"are only recorded by {late.date()}"
        )
        raise ShortHistoryError(
            f"too few closed deals to backtest: {min_events} {which} {when}, but a test "
            f"snapshot needs {horizon_days} days of follow-up before {data_end.date()}, so "
            f"the cutoff must be by {latest_allowed.date()}. Use a shorter "
            "train.horizon_days (one of features.horizons_days), or pass --as-of DATE; if "
            "wins or losses were recorded late, `dealcast validate` says so"
        )
    return min(max(cutoff, max(enough)), latest_allowed)


def _kth_close(times: pd.Series, k: int) -> pd.Timestamp:
    """The time by which ``k`` closes were recorded (latest possible when fewer)."""
    ordered = pd.Series(times).dropna().sort_values()
    return ordered.iloc[k - 1] if len(ordered) >= k else NEVER


NEVER = pd.Timestamp.max.tz_localize("UTC")
