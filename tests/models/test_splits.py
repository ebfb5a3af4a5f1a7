"""Split honesty: time order, and no training label that looks past the cutoff."""

from __future__ import annotations

import pandas as pd

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
