"""The calendar clock: on which days inside one of the close model's intervals deals close.

The close model gives P(won by day d after as_of) only at its interval ends (7, 14, 28,
56, ... days). A month or a quarter rarely ends on one of them, so each interval's
probability must be shared between the days inside it. Sharing it evenly is wrong in B2B:
reps pull deals in to make the quarter, so wins bunch in a quarter's last days and thin
out in the first weeks of the next. Evenly shared, the forecast gives a quarter's first
month too much and its last month too little.

The clock measures, in the CRM's own history, the won revenue per calendar day in each
week of the quarter (:func:`quarter_week`: whole weeks before the next quarter starts),
relative to the mean, and shrinks each week to the mean with ``prior_days`` days of
average intensity. :func:`serving.forecast.curve_probabilities` then shares an interval's
probability in proportion to the clock's intensity of its days. Only the sharing inside
an interval changes: P(won by each interval end) is still the model's.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.calendar import days_to_quarter_end
from features.point_in_time import to_us

#: Positions of a day in its quarter: 0 = the last 7 days before the next quarter starts.
WEEKS = 14
DAY = pd.Timedelta(days=1)


def quarter_week(times: pd.DatetimeIndex) -> np.ndarray:
    """Whole weeks from each time (UTC) to the start of the next calendar quarter."""
    days = days_to_quarter_end(to_us(pd.DatetimeIndex(times)))
    return np.clip((days // 7).astype(int), 0, WEEKS - 1)


def intensity_profile(
    deals: pd.DataFrame, *, as_of: pd.Timestamp, won_label: str, prior_days: float
) -> np.ndarray:
    """Relative won-revenue intensity of each quarter week (mean 1 over calendar days).

    From deals won and closed before ``as_of`` (amount-weighted: it is revenue that is
    forecast; counts when no win has an amount), per calendar day of the history in that
    week. Flat (all ones) without wins.
    """
    closed = pd.DatetimeIndex(deals["closed_at"])
    won = (deals["outcome"].astype("object") == won_label).to_numpy(bool)
    pick = won & np.asarray(closed < as_of, bool)
    first = pd.DatetimeIndex(deals["created_at"]).min()
    if not pick.any() or pd.isna(first) or first >= as_of:
        return np.ones(WEEKS)
    amount = np.nan_to_num(pd.to_numeric(deals["amount"], errors="coerce").to_numpy(float))
    weight = amount[pick] if amount[pick].sum() > 0 else np.ones(int(pick.sum()))
    mass = np.bincount(quarter_week(closed[pick]), weights=weight, minlength=WEEKS)
    days = pd.date_range(first.normalize(), as_of, freq="D", inclusive="left")
    exposure = np.bincount(quarter_week(days), minlength=WEEKS).astype(float)
    mean = mass.sum() / max(exposure.sum(), 1.0)
    rate = (mass + prior_days * mean) / (exposure + prior_days)
    return rate / mean


def clock(as_of: pd.Timestamp, profile: np.ndarray, days: float) -> np.ndarray:
    """Cumulative intensity ``W`` at whole days ``0, 1, ..., ceil(days)`` after ``as_of``
    (``W(t) = t`` for a flat profile)."""
    n = int(np.ceil(max(days, 0.0))) + 1
    starts = pd.DatetimeIndex(as_of + pd.to_timedelta(np.arange(n), unit="D"))
    return np.r_[0.0, np.cumsum(profile[quarter_week(starts)])]


def warp(t: float | np.ndarray, w: np.ndarray | None) -> np.ndarray:
    """The clock's time at ``t`` days after as_of (``t`` itself without a clock); linear
    between whole days, extended with slope 1 beyond the clock's end."""
    t = np.asarray(t, float)
    if w is None:
        return t
    grid = np.arange(len(w), dtype=float)
    return np.where(t <= grid[-1], np.interp(t, grid, w), w[-1] + (t - grid[-1]))


def calendar_clock_at(
    deals: pd.DataFrame, *, as_of: pd.Timestamp, won_label: str, prior_days: float
) -> np.ndarray:
    """The clock of the CRM's history before ``as_of`` over the next 366 days (beyond,
    :func:`warp` runs at slope 1)."""
    profile = intensity_profile(deals, as_of=as_of, won_label=won_label, prior_days=prior_days)
    return clock(as_of, profile, 366)
