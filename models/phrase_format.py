"""Formatting helpers of the driver phrases: durations, counts, shares and numbers as a
person writes them ("41 days", "3 months", "31 %", "1,234")."""

from __future__ import annotations

import math

import pandas as pd

Value = float | str


class Gap(str):
    """A phrase that only says a value is unknown ("industry unknown"): a true reason why a
    score is lower, but never listed as a reason up (an unknown is not a buying signal)."""


def _plural(n: float, one: str, many: str | None = None) -> str:
    many = many if many is not None else one + "s"
    return f"{_int(n)} {one if round(n) == 1 else many}"


def _int(v: float) -> str:
    return f"{round(v):,d}"


def _span(days: float) -> str:
    """A duration in the unit a person would use: days, then months, then years."""
    d = abs(days)
    if d < 60:  # whole days elapsed, as the export's days_in_stage counts them
        return _plural(math.floor(d), "day")
    if d < 730:
        return _plural(d / 30.44, "month")
    years = d / 365.25
    return f"{years:.0f} years" if years >= 10 or years == round(years) else f"{years:.1f} years"


def _pct(v: float) -> str:
    return f"{v * 100:.0f} %"


def _num(v: float) -> str:
    """A number rounded sensibly: 2, 1,234, 0.42, 3.14 (never 1.0000)."""
    if not math.isfinite(v):
        return str(v)
    if abs(v) >= 100 or v == round(v):
        return _int(v)
    return f"{v:.3g}"


def _text(value: Value) -> str:
    if isinstance(value, str):
        return value
    return _num(float(value))


def _words(name: str) -> str:
    return name.replace("_", " ")


def _stage(row: pd.Series) -> str:
    stage = row.get("stage__current")
    return str(stage) if isinstance(stage, str) and stage else "this stage"


def _n_stages(row: pd.Series) -> int:
    """Open stages of the funnel: one ``stage__days_spent_<stage>`` column each."""
    return sum(1 for k in row.index if str(k).startswith("stage__days_spent_"))


CHANNEL_NOUNS = {  # channel column part -> (one, many)
    "social": ("social touch", "social touches"),
    "other": ("other touch", "other touches"),
    "event": ("event", "events"),
}


def _channel(name: str) -> tuple[str, str]:
    return CHANNEL_NOUNS.get(name, (_words(name), _words(name) + "s"))


def _count(v: float, one: str, many: str, where: str) -> str:
    """``4 meetings in the last 30 days`` / ``no meeting in the last 30 days``."""
    head = f"no {one}" if round(v) == 0 else _plural(v, one, many)
    return f"{head} {where}".strip()


def _since(v: float, what: str) -> str:
    """``no meeting in 41 days`` (two weeks or more), ``last meeting 3 days ago``."""
    if v >= 14:
        return f"no {what} in {_span(v)}"
    if round(v) == 0:
        return f"last {what} today"
    return f"last {what} {_span(v)} ago"


def _amount(v: float) -> str:
    return f"{math.expm1(v):,.0f}"
