"""Cohorts: is this month's (quarter's) pipeline converting worse? An honest answer while
most of its deals are still open.

Deals are grouped by the month or quarter they were created in; each cohort's win rate is
the Aalen–Johansen cumulative incidence of a win over days since creation (open deals
censored), so a young cohort is compared on the days it has actually lived, not on the
closed-deals share that over-represents its fast losses.

The flag rule: a cohort is *below the previous ones* when, at ``compare_days`` =
min(:data:`MAX_COMPARE_DAYS`, days from the cohort's middle to the data's end), its win
incidence is lower than that of the deals of the :data:`PREVIOUS` cohorts before it
(pooled) by more than z = 1.645 standard errors of the difference (one-sided, the 90 %
level the funnel uses). Cohorts younger than :data:`MIN_COMPARE_DAYS` at that point, or
without a previous cohort, are not judged.
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pandas as pd

from crm.data import CRMData
from serving.funnel_events import deal_outcomes
from serving.survival import LEVEL, Curve, cumulative_incidence

#: How many earlier cohorts, pooled, a cohort is compared with.
PREVIOUS = 4
#: A cohort is judged only when its comparison day is at least this many days.
MIN_COMPARE_DAYS = 21
#: Comparison day cap: deals that close take weeks to months; later days add only noise.
MAX_COMPARE_DAYS = 180
#: Data spanning more than this many months is grouped by quarter, else by month.
QUARTERS_AFTER_MONTHS = 18
COLUMNS = [
    "cohort", "start", "deals", "open", "won", "lost", "horizon_days", "win_rate",
    "win_rate_lo", "win_rate_hi", "naive_win_rate", "compare_days", "win_by_compare_day",
    "previous_by_compare_day", "z", "below_previous",
]  # fmt: skip


def pick_freq(created_at: pd.Series) -> str:
    """``"quarter"`` when the deals span more than :data:`QUARTERS_AFTER_MONTHS` months,
    else ``"month"``."""
    if created_at.empty:
        return "month"
    span = (created_at.max() - created_at.min()) / pd.Timedelta(days=30.44)
    return "quarter" if span > QUARTERS_AFTER_MONTHS else "month"


def cohort_label(start: pd.Timestamp, freq: str) -> str:
    """A human label: ``Mar 2025`` or ``2025 Q1``."""
    if freq == "quarter":
        return f"{start.year} Q{(start.month - 1) // 3 + 1}"
    return start.strftime("%b %Y")


def cohort_starts(created_at: pd.Series, freq: str) -> pd.Series:
    """The first instant (UTC) of each deal's creation month or quarter."""
    if freq not in ("month", "quarter"):
        raise ValueError(f"cohort freq must be 'month' or 'quarter', got {freq!r}")
    t = created_at.dt.tz_convert("UTC")
    month = t.dt.month if freq == "month" else (t.dt.month - 1) // 3 * 3 + 1
    starts = pd.to_datetime(pd.DataFrame({"year": t.dt.year, "month": month, "day": 1}), utc=True)
    return starts.astype(created_at.dtype)


def cohort_table(data: CRMData, *, freq: str, data_end: pd.Timestamp) -> pd.DataFrame:
    """One row per creation cohort (oldest first, :data:`COLUMNS`): counts, the win
    incidence by the cohort's longest follow-up (``horizon_days``) with its 90 % interval,
    the naive closed-deal share, and the comparison with the previous cohorts (see the
    module docstring for the rule; ``below_previous`` is None where not judged)."""
    outcomes, groups = _grouped(data, freq=freq, data_end=data_end)
    rows = []
    for k, (start, o) in enumerate(groups):
        won = _win_curve(o)
        n = o["cause"].value_counts().reindex([0, 1, 2], fill_value=0).tolist()
        row = {"cohort": cohort_label(start, freq), "start": start, "deals": len(o),
               "open": n[0], "won": n[1], "lost": n[2],
               "horizon_days": float(o["days"].max())}  # fmt: skip
        row["win_rate"], row["win_rate_lo"], row["win_rate_hi"] = won.final()
        row["naive_win_rate"] = n[1] / (n[1] + n[2]) if n[1] + n[2] else np.nan
        previous = [g for _, g in groups[max(0, k - PREVIOUS) : k]]
        rows.append(row | _compare(won, previous, start=start, freq=freq, data_end=data_end))
    return pd.DataFrame(rows, columns=COLUMNS)


def cohort_curves(data: CRMData, *, freq: str, data_end: pd.Timestamp) -> pd.DataFrame:
    """Win incidence curves per cohort, long format: ``cohort``, ``days`` since creation,
    ``value``, ``lower``, ``upper``, and ``previous`` (the pooled previous cohorts' curve
    value at the same day, NaN for the first cohort)."""
    _, groups = _grouped(data, freq=freq, data_end=data_end)
    parts = []
    for k, (start, o) in enumerate(groups):
        won = _win_curve(o)
        days = np.r_[0.0, won.days]
        previous = [g for _, g in groups[max(0, k - PREVIOUS) : k]]
        ref = _win_curve(pd.concat(previous)) if previous else None
        parts.append(pd.DataFrame({
            "cohort": cohort_label(start, freq),
            "days": days,
            "value": np.r_[0.0, won.value],
            "lower": np.r_[0.0, won.lower],
            "upper": np.r_[0.0, won.upper],
            "previous": [ref.at(d)[0] for d in days] if ref else np.nan,
        }))  # fmt: skip
    columns = ["cohort", "days", "value", "lower", "upper", "previous"]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)


def _grouped(data: CRMData, *, freq: str, data_end: pd.Timestamp):
    outcomes = deal_outcomes(data, data_end=data_end)
    starts = cohort_starts(outcomes["created_at"], freq)
    return outcomes, [(s, o) for s, o in outcomes.groupby(starts.to_numpy(), sort=True)]


def _win_curve(o: pd.DataFrame) -> Curve:
    return cumulative_incidence(o["days"], o["cause"], n_causes=2)[1]


def _compare(
    won: Curve, previous: list[pd.DataFrame], *, start, freq: str, data_end: pd.Timestamp
) -> dict:
    end = start + (pd.DateOffset(months=3) if freq == "quarter" else pd.DateOffset(months=1))
    middle = start + (end - start) / 2
    day = min(MAX_COMPARE_DAYS, (data_end - middle) / pd.Timedelta(days=1))
    out = {"compare_days": day, "win_by_compare_day": np.nan,
           "previous_by_compare_day": np.nan, "z": np.nan, "below_previous": None}  # fmt: skip
    if not previous or day < MIN_COMPARE_DAYS:
        return out
    ref = _win_curve(pd.concat(previous))
    mine, theirs = won.at(day)[0], ref.at(day)[0]
    se = float(np.hypot(won.se_at(day), ref.se_at(day)))
    z = (mine - theirs) / se if se > 0 else np.nan
    critical = NormalDist().inv_cdf(LEVEL + (1 - LEVEL) / 2)
    return out | {"win_by_compare_day": mine, "previous_by_compare_day": theirs, "z": z,
                  "below_previous": bool(z < -critical) if not np.isnan(z) else None}  # fmt: skip
