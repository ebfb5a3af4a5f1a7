"""Failure scenarios: the synthetic CRM bent the way real CRM exports are bent.

Each scenario reproduces one failure seen on real exports, so tests and benchmarks can
prove a fix without real data. Scenarios combine; whatever order they are given in, they
act in the fixed order of :data:`SCENARIOS`, at one of three moments of the generation:

* before the simulation, on the period and the deals (``short``, ``level-shift``): the
  hidden truth changes with them (``p_win_true`` is exact for the shifted deals);
* after the simulation, on the recorded frames (``late-wins``, ``left-truncated``,
  ``field-stops``, ``blank-when-open``, in this order): only what the CRM *recorded*
  changes, the truth keeps the real, uncut outcome and close time of every deal.

Dates are fractions of the simulated period, so scenarios also combine with ``short``.
What each scenario does (the constants below set the amounts):

* ``short``: the history is the last :data:`SHORT_MONTHS` months before as_of (``start``
  is ignored) and every stage dwell is :data:`SHORT_CYCLE_FACTOR` times as long as usual
  (deals take about 30 days), so a 30-60 day horizon makes sense;
* ``level-shift``: deals created from :data:`SHIFT_AT` of the period on are worse, by the
  quality shift that lowers their expected win rate by :data:`SHIFT_DROP` (a third);
* ``late-wins``: the CRM logged won dates only in the last :data:`LOG_DAYS` days; earlier
  wins were back-filled in the first :data:`BACKFILL_DAYS` days of logging, and losses are
  recorded :data:`LOSS_WAIT_DAYS` days after creation (or at the real loss, if later);
* ``left-truncated``: the export starts at :data:`TRUNCATE_AT` of the period: earlier
  deals are kept only if still open then, with ``created_at`` set to the export's first
  instant, their stage history cut to the stage they were in then, earlier touches gone;
* ``field-stops``: :data:`STOPPED_COLUMNS` are blank for deals created from
  :data:`STOP_AT` of the period on (before, they are filled and predictive);
* ``blank-when-open``: :data:`BLANK_WHEN_OPEN_COLUMN` is blank exactly for the deals that
  are still open in the recorded data.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

import numpy as np
import pandas as pd

from crm.synthetic.deals import Deals, dwell_scale_of
from crm.synthetic.progression import win_probability
from crm.synthetic.timeline import Timeline, as_utc

SHORT_MONTHS, SHORT_CYCLE_FACTOR = 5, 0.75
SHIFT_AT, SHIFT_DROP = 0.5, 1 / 3
LOG_DAYS, BACKFILL_DAYS, LOSS_WAIT_DAYS = 91, 30, 120
TRUNCATE_AT = 0.2
STOP_AT, STOPPED_COLUMNS = 0.65, ("amount", "competitor_present")
BLANK_WHEN_OPEN_COLUMN = "segment"

#: Every scenario, in the order they act, with a one-line description.
SCENARIOS: dict[str, str] = {
    "short": f"{SHORT_MONTHS} months of history, fast (~30-day) deals",
    "level-shift": "the win rate drops by a third for deals created after a date",
    "late-wins": "won dates logged only in the last months; losses after a fixed wait",
    "left-truncated": "the export starts mid-stream (earlier deals kept only if open)",
    "field-stops": f"{', '.join(STOPPED_COLUMNS)} stop being filled after a date",
    "blank-when-open": f"{BLANK_WHEN_OPEN_COLUMN} blank exactly for never-closed deals",
}


class UnknownScenarioError(ValueError):
    """A scenario name that :data:`SCENARIOS` does not have."""


def scenario_order(names: Iterable[str]) -> tuple[str, ...]:
    """The distinct ``names`` in the order they act; unknown names raise, listing the known."""
    names = tuple(names)
    unknown = sorted(set(names) - set(SCENARIOS))
    if unknown:
        raise UnknownScenarioError(
            f"unknown scenario {', '.join(map(repr, unknown))}; choose from: "
            + ", ".join(SCENARIOS)
        )
    return tuple(name for name in SCENARIOS if name in names)


def scenario_start(names: tuple[str, ...], start: pd.Timestamp, as_of: pd.Timestamp):
    """The first day of the simulated period: ``start``, or the ``short`` history's."""
    if "short" not in names:
        return start
    return (as_utc(as_of) - pd.DateOffset(months=SHORT_MONTHS)).normalize()


def adjust_deals(
    names: tuple[str, ...], deals: Deals, *, timeline: Timeline, n_stages: int
) -> tuple[Deals, dict[str, str]]:
    """The deals the stage process will run, after ``level-shift`` and ``short``."""
    notes: dict[str, str] = {}
    if "level-shift" in names:
        deals, notes["level-shift"] = _level_shift(deals, timeline=timeline, n_stages=n_stages)
    if "short" in names:
        deals = _faster(deals, timeline)
        end = timeline.origin + pd.Timedelta(days=timeline.horizon)
        notes["short"] = (
            f"history {timeline.origin.date()} to {end.date()}, stage dwell times x"
            f"{SHORT_CYCLE_FACTOR}"
        )
    return deals, notes


def _level_shift(deals: Deals, *, timeline: Timeline, n_stages: int) -> tuple[Deals, str]:
    """Lower the quality of later deals so that their mean P(win) falls by SHIFT_DROP."""
    after = deals.created >= _day_at(timeline, SHIFT_AT)
    delta = _shift_for_drop(deals.quality[after], deals.entry[after], n_stages)
    shift = np.where(after, -delta, 0.0)
    quality = deals.quality + shift
    adjusted = replace(
        deals,
        quality=quality,
        parts={**deals.parts, "level_shift": shift},
        dwell_scale=dwell_scale_of(deals.amount, quality),
    )
    when = _date_at(timeline, SHIFT_AT)
    return (
        adjusted,
        f"deals created from {when} on: quality -{delta:.3f} ({int(after.sum())} deals)",
    )


def _shift_for_drop(quality: np.ndarray, entry: np.ndarray, n_stages: int) -> float:
    """The quality shift that multiplies the mean exact P(win) by 1 - SHIFT_DROP (bisection)."""
    if len(quality) == 0:
        return 0.0

    def mean_p(delta: float) -> float:
        p = win_probability(quality - delta, entry, n_stages, days_in_stage=None, dwell_scale=None)
        return float(p.mean())

    target = (1.0 - SHIFT_DROP) * mean_p(0.0)
    lo, hi = 0.0, 5.0
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if mean_p(mid) > target else (lo, mid)
    return 0.5 * (lo + hi)


def _faster(deals: Deals, timeline: Timeline) -> Deals:
    """Shorter dwell times and, with them, the reps' planned close dates (still whole days)."""
    offset = (timeline.origin - timeline.origin.normalize()) / pd.Timedelta(days=1)
    planned = deals.created + (deals.expected_close - deals.created) * SHORT_CYCLE_FACTOR
    expected = np.floor(planned + offset) - offset
    return replace(
        deals, dwell_scale=deals.dwell_scale * SHORT_CYCLE_FACTOR, expected_close=expected
    )


def _day_at(timeline: Timeline, fraction: float) -> float:
    """Days since origin of the midnight (UTC) at ``fraction`` of the period."""
    moment = timeline.origin + pd.Timedelta(days=fraction * timeline.horizon)
    return (moment.normalize() - timeline.origin) / pd.Timedelta(days=1)


def _date_at(timeline: Timeline, fraction: float) -> str:
    return str((timeline.origin + pd.Timedelta(days=_day_at(timeline, fraction))).date())


def moment_at(timeline: Timeline, fraction: float) -> pd.Timestamp:
    """The midnight (UTC) at ``fraction`` of the period, as a timestamp."""
    return timeline.origin + pd.Timedelta(days=_day_at(timeline, fraction))
