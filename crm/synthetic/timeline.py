"""Time inside the simulation: float days since an origin, calendars and conversions.

Every event time of the generator is a float number of days since ``origin`` (the
``start`` of the period, in UTC). Only when frames are built are the days turned into
``datetime64[us, UTC]`` values, floored to whole seconds so that an event at or before
``as_of`` never rounds past it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from crm.schemas import TIMESTAMP_DTYPE

SECONDS_PER_DAY = 86_400
#: Relative deal-creation intensity per calendar month (Jan..Dec): quiet August/December.
MONTH_SEASON = np.array([0.95, 1.0, 1.1, 1.0, 1.05, 1.0, 0.9, 0.6, 1.1, 1.15, 1.05, 0.7])
#: Relative intensity per weekday (Mon..Sun): B2B work happens on weekdays.
WEEKDAY_SEASON = np.array([1.0, 1.0, 1.0, 1.0, 0.95, 0.1, 0.06])
#: Growth of deal creation: exp(TREND_PER_YEAR * years since start).
TREND_PER_YEAR = 0.3
#: Weight of the days between Christmas Eve and New Year's Day.
HOLIDAY_FACTOR = 0.3


@dataclass(frozen=True)
class Timeline:
    """The simulated period: origin (= start, UTC) and horizon (= as_of) in days."""

    origin: pd.Timestamp
    horizon: float

    @classmethod
    def between(cls, start: pd.Timestamp, as_of: pd.Timestamp) -> Timeline:
        """A timeline from ``start`` to ``as_of``; naive timestamps are read as UTC."""
        origin, end = as_utc(start), as_utc(as_of)
        if end <= origin + pd.Timedelta(days=30):
            raise ValueError(f"as_of ({end}) must be at least 30 days after start ({origin})")
        return cls(origin=origin, horizon=(end - origin) / pd.Timedelta(days=1))

    def timestamps(self, days: np.ndarray) -> pd.Series:
        """Days since origin as ``datetime64[us, UTC]``, floored to seconds; NaN gives NaT."""
        days = np.asarray(days, dtype=np.float64)
        missing = np.isnan(days)
        seconds = np.floor(np.where(missing, 0.0, days) * SECONDS_PER_DAY).astype(np.int64)
        base = np.datetime64(self.origin.tz_localize(None), "us")
        values = base + (seconds * 1_000_000).astype("timedelta64[us]")
        values[missing] = np.datetime64("NaT")
        return pd.Series(values).dt.tz_localize("UTC").astype(TIMESTAMP_DTYPE)

    def dates(self, days: np.ndarray) -> pd.Series:
        """Days since origin as calendar dates (midnight UTC), for date-typed columns."""
        return self.timestamps(days).dt.floor("D")

    def day_calendar(self, first: int, last: int) -> pd.DatetimeIndex:
        """The UTC timestamps at day offsets ``first..last-1`` after the origin."""
        return pd.date_range(self.origin + pd.Timedelta(days=first), periods=last - first, freq="D")

    def quarter_starts(self) -> np.ndarray:
        """Quarter boundaries (midnight of 1 Jan/Apr/Jul/Oct, UTC) in days, with margin.

        Spans a year before the origin to four years after the horizon, enough for every
        simulated close time (closes beyond as_of are simulated too).
        """
        lo = (self.origin - pd.DateOffset(years=1)).normalize()
        hi = self.origin + pd.Timedelta(days=self.horizon) + pd.DateOffset(years=4)
        starts = pd.date_range(lo, hi, freq="QS")
        return np.asarray((starts - self.origin) / pd.Timedelta(days=1), dtype=np.float64)


def as_utc(ts: pd.Timestamp) -> pd.Timestamp:
    """``ts`` in UTC; a naive timestamp is taken to be UTC already (as the contract says)."""
    ts = pd.Timestamp(ts)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def creation_day_weights(timeline: Timeline) -> tuple[np.ndarray, np.ndarray]:
    """Day offsets and their relative deal-creation intensity over [origin, horizon).

    Intensity = trend x month season x weekday x holiday, times the share of the day that
    lies before the horizon (the last day may be partial).
    """
    n_days = int(np.ceil(timeline.horizon))
    days = np.arange(n_days)
    calendar = timeline.day_calendar(0, n_days)
    weights = np.exp(TREND_PER_YEAR * days / 365.25)
    weights *= MONTH_SEASON[calendar.month - 1] * WEEKDAY_SEASON[calendar.day_of_week]
    holiday = ((calendar.month == 12) & (calendar.day >= 24)) | (
        (calendar.month == 1) & (calendar.day == 1)
    )
    weights *= np.where(holiday, HOLIDAY_FACTOR, 1.0)
    weights *= np.clip(timeline.horizon - days, 0.0, 1.0)
    return days, weights


def office_hours_weight(days: np.ndarray, origin: pd.Timestamp) -> np.ndarray:
    """How likely a human interaction happens at these instants, in [0, 1].

    1 on weekday office hours (08-18 UTC), 0.3 in the shoulders, 0.04 at night; weekends
    count 12 %. Used to thin uniformly drawn candidate times.
    """
    origin_day = (origin - origin.normalize()) / pd.Timedelta(days=1)
    absolute = days + origin_day
    hour = (absolute % 1.0) * 24.0
    by_hour = np.where(
        (hour >= 8) & (hour < 18), 1.0, np.where((hour >= 6) & (hour < 21), 0.3, 0.04)
    )
    weekday = (np.floor(absolute).astype(np.int64) + origin.normalize().day_of_week) % 7
    return by_hour * np.where(weekday >= 5, 0.12, 1.0)


def quarter_end_boost(days: np.ndarray, quarter_starts: np.ndarray, window: float) -> np.ndarray:
    """True where an instant lies within ``window`` days before a quarter boundary."""
    nxt = quarter_starts[np.searchsorted(quarter_starts, days, side="right")]
    return (nxt - days) <= window
