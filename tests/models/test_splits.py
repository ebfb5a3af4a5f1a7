"""Split honesty: time order, and no training label that looks past the cutoff."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.splits import calibration_split, time_split, training_dates
from tests.models.conftest import CUTOFF, HORIZON


def test_training_dates_leave_the_whole_horizon_before_the_cutoff():
    dates = pd.date_range("2025-01-06", "2026-01-05", freq="W-MON", tz="UTC")
    cutoff = pd.Timestamp("2025-09-01", tz="UTC")
    train = training_dates(dates, cutoff=cutoff, horizon_days=90)
    assert (train + pd.Timedelta(days=90) <= cutoff).all()
    assert train.max() == pd.Timestamp("2025-06-02", tz="UTC")


def test_calibration_slice_is_the_latest_dates():
    dates = pd.date_range("2025-01-06", periods=10, freq="W-MON", tz="UTC")
    fit, cal = calibration_split(dates, calibration_fraction=0.2)
    assert len(cal) == 2 and fit.max() < cal.min()
    fit, cal = calibration_split(dates[:1], calibration_fraction=0.2)
    assert len(fit) == 1 and len(cal) == 0


def test_test_dates_are_strictly_after_the_cutoff():
    dates = pd.date_range("2025-01-06", "2026-01-05", freq="W-MON", tz="UTC")
    cutoff = pd.Timestamp("2025-09-01", tz="UTC")
    split = time_split(dates, cutoff=cutoff, horizon_days=90, calibration_fraction=0.25)
    assert split.test.min() > cutoff and split.training.max() < cutoff
    assert split.fit.max() < split.calibration.min()


def test_every_training_label_is_known_at_the_cutoff(small_backtest):
    labels = small_backtest.train.labels
    assert (labels["as_of"] + pd.Timedelta(days=HORIZON) <= CUTOFF).all()
    assert labels[f"won_within_{HORIZON}d"].notna().all()
    # outcomes after the cutoff are unknown to the training labels
    closes = labels["as_of"] + pd.to_timedelta(labels["days_to_close"], unit="D")
    assert (closes.dropna() <= CUTOFF).all()


def _weekly(start: str, end: str) -> pd.DatetimeIndex:
    return pd.date_range(start, end, freq="W-MON", tz="UTC")


def _closes(start: str, n: int, every_days: int) -> pd.Series:
    return pd.Series(
        pd.Timestamp(start, tz="UTC") + pd.to_timedelta(np.arange(n) * every_days, "D")
    )


def test_backtest_cutoff_on_a_long_history_is_horizon_plus_test_days_before_the_end():
    from models.splits import backtest_cutoff

    end = pd.Timestamp("2026-06-29", tz="UTC")
    closes = _closes("2024-01-10", 400, 2)
    got = backtest_cutoff(
        _weekly("2024-01-01", "2026-06-29"), data_end=end, horizon_days=180, test_days=182,
        won_at=closes, lost_at=closes,
    )  # fmt: skip
    assert got == end - pd.Timedelta(days=180 + 182)


def test_backtest_cutoff_on_a_short_history_shrinks_the_test_window():
    """Five months of 30-day deals backtest with a 30-day horizon and the default
    test_days: the cutoff moves later, leaving training half of the usable history."""
    from models.splits import backtest_cutoff

    dates, end = _weekly("2026-02-02", "2026-06-29"), pd.Timestamp("2026-06-29", tz="UTC")
    closes = _closes("2026-02-05", 200, 1)
    got = backtest_cutoff(
        dates, data_end=end, horizon_days=30, test_days=182, won_at=closes, lost_at=closes
    )
    test = dates[(dates > got) & (dates + pd.Timedelta(days=30) <= end)]
    assert len(test) >= 2 and got > dates.min() + pd.Timedelta(days=40)


def test_backtest_cutoff_says_what_to_change_when_nothing_fits():
    from models.splits import ShortHistoryError, backtest_cutoff

    dates, end = _weekly("2026-02-02", "2026-06-29"), pd.Timestamp("2026-06-29", tz="UTC")
    closes = _closes("2026-02-05", 200, 1)
    with pytest.raises(ShortHistoryError, match="train.horizon_days.*--as-of"):
        backtest_cutoff(
            dates, data_end=end, horizon_days=180, test_days=182, won_at=closes, lost_at=closes
        )
    late = _closes("2026-06-01", 30, 0)  # every win recorded in June (logged late)
    with pytest.raises(ShortHistoryError, match="20 wins are only recorded by 2026-06-01"):
        backtest_cutoff(
            dates, data_end=end, horizon_days=30, test_days=182, won_at=late, lost_at=closes
        )
