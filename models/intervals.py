"""Discrete-time competing-risks building blocks: interval rows, a stage hazard table and
the level recalibration.

A snapshot (deal, as_of) is followed over intervals of days after as_of,
``(0, e1], (e1, e2], ...``. In each interval an open deal is won, lost or still open. An
interval is a training row only when the deal was still open at its start and the data
watched the whole interval (``days_observed >= end``): then the data knows how it ended.
A close inside an interval the data stopped watching halfway is known, but the deals
still open at that point are not, so keeping the closes alone would inflate the hazard;
such intervals are censored whole. Nothing later than the data's end is ever needed, so
every snapshot up to the cutoff contributes (recent ones with their first intervals only).
This is the censoring-aware alternative to "as_of + H <= cutoff".

Delayed entry (left truncation): a label ``entry_days`` (optional) says from how many days
after as_of the record is trustworthy (a snapshot older than a trimmed history's start,
:mod:`features.history_start`); intervals starting before it are not training rows.

An interval no training row reached (beyond the longest follow-up, or between the
intervals a delayed entry reached) has hazards nobody measured. :func:`extend_unobserved`
carries the nearest earlier measured interval's daily rates into it (a constant hazard per
day, the piecewise-exponential assumption), instead of whatever trees or tables return for
an interval start they never saw: a first-week hazard served for a 14-day interval, or
each deal's first-week hazard repeated as if deals did not move on.

Hazards are ``(n, K, 3)`` arrays over the classes :data:`EVENTS` = (open, won, lost); the
cumulative incidence of winning by the end of interval k is
``sum_{j<=k} S(j-1) * h_won(j)`` with ``S`` the probability of still being open.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from features.calendar import days_to_quarter_end
from features.point_in_time import to_us

EVENTS = ("open", "won", "lost")
OPEN, WON, LOST = 0, 1, 2
INTERVAL_COLUMN = "hazard__interval_start_days"
QUARTER_END_COLUMN = "hazard__interval_has_quarter_end"
QUARTER_POSITION_COLUMN = "hazard__interval_days_to_quarter_end"


def interval_edges(edges_days: tuple[int, ...], horizon_days: int) -> np.ndarray:
    """Sorted interval ends in days, the horizon always one of them."""
    ends = {int(d) for d in edges_days if int(d) > 0} | {int(horizon_days)}
    return np.array(sorted(ends), dtype=float)


@dataclass(frozen=True)
class IntervalRows:
    """One row per fully observed (snapshot, interval): the snapshot's position ``row``,
    the interval index ``k`` and the ``event`` in it (``OPEN``, ``WON`` or ``LOST``)."""

    row: np.ndarray
    k: np.ndarray
    event: np.ndarray


def interval_rows(labels: pd.DataFrame, edges: np.ndarray) -> IntervalRows:
    """Interval rows of labelled snapshots (labels: ``outcome``, ``days_to_close``,
    ``days_observed`` as of the cutoff, see :mod:`features.labels`; optional
    ``entry_days``, see the module docstring)."""
    outcome = labels["outcome"].astype("object")
    closed = outcome.notna().to_numpy()
    dtc = np.where(closed, labels["days_to_close"].to_numpy(float, na_value=np.nan), np.inf)
    observed = labels["days_observed"].to_numpy(float)
    starts, ends = np.r_[0.0, edges[:-1]], edges
    at_risk = dtc[:, None] > starts[None, :]
    event_here = at_risk & (dtc[:, None] <= ends[None, :])
    watched = observed[:, None] >= ends[None, :]
    if "entry_days" in labels:
        entry = labels["entry_days"].to_numpy(float, na_value=0.0)
        watched &= starts[None, :] >= entry[:, None]
    keep = at_risk & watched
    row, k = np.nonzero(keep)
    won = outcome.eq("won").to_numpy(bool)
    event = np.where(event_here[row, k], np.where(won[row], WON, LOST), OPEN)
    return IntervalRows(row=row, k=k, event=event.astype(int))


def observed_intervals(rows: IntervalRows, n_intervals: int) -> np.ndarray:
    """Mask of the intervals at least one training row reached."""
    return np.bincount(rows.k, minlength=n_intervals)[:n_intervals] > 0


def extend_unobserved(hazards: np.ndarray, edges, observed: np.ndarray | None) -> np.ndarray:
    """``(n, K, 3)`` hazards with each interval no training row reached (``observed``
    False) given the daily rates of the nearest earlier observed interval: still open
    with ``S ** (width / width_j)``, the rest split between won and lost as there (see
    the module docstring). Intervals before the first observed one, and all of them when
    ``observed`` is None (a model pickled before it was recorded), stay as they are."""
    if observed is None or observed.all() or not observed.any():
        return hazards
    width = np.diff(np.r_[0.0, np.asarray(edges, float)])
    out = hazards.copy()
    last = -1
    for k in range(hazards.shape[1]):
        if observed[k]:
            last = k
            continue
        if last < 0:
            continue
        h = hazards[:, last]
        stay = np.clip(h[:, OPEN], 1e-12, 1.0) ** (width[k] / width[last])
        closing = np.clip(1.0 - h[:, [OPEN]], 1e-12, None)
        out[:, k, OPEN] = stay
        out[:, k, WON:] = (1.0 - stay)[:, None] * h[:, WON:] / closing
    return out


def with_interval(
    matrix: pd.DataFrame, rows: np.ndarray, k: np.ndarray, edges, as_of: pd.Series
) -> pd.DataFrame:
    """The snapshot matrix repeated for each interval row, plus the interval's start,
    whether a calendar quarter ends inside it and the days from its start to the next
    quarter's start (deals bunch their closes at quarter ends and thin out in a quarter's
    first weeks; the calendar is known in advance, so this uses nothing after as_of)."""
    out = matrix.iloc[rows].reset_index(drop=True)
    starts = np.r_[0.0, np.asarray(edges)[:-1]]
    lo = pd.DatetimeIndex(as_of)[rows] + pd.to_timedelta(starts[k], unit="D")
    to_quarter = days_to_quarter_end(to_us(lo))
    out[INTERVAL_COLUMN] = starts[k]
    # a quarter ends inside (start, end] when the next one starts by the interval's end
    out[QUARTER_END_COLUMN] = (to_quarter <= np.asarray(edges, float)[k] - starts[k]).astype(float)
    out[QUARTER_POSITION_COLUMN] = to_quarter
    return out


def all_intervals(n: int, n_intervals: int) -> tuple[np.ndarray, np.ndarray]:
    """(row, k) of every snapshot crossed with every interval, row-major."""
    return np.repeat(np.arange(n), n_intervals), np.tile(np.arange(n_intervals), n)


def cumulative_incidence(hazards: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(won, lost) cumulative incidence at each interval end from ``(n, K, 3)`` hazards."""
    survive = np.cumprod(hazards[:, :, OPEN], axis=1)
    before = np.concatenate([np.ones((len(hazards), 1)), survive[:, :-1]], axis=1)
    won = np.cumsum(before * hazards[:, :, WON], axis=1)
    lost = np.cumsum(before * hazards[:, :, LOST], axis=1)
    return won, lost


def row_log_loss(proba: np.ndarray, event: np.ndarray) -> np.ndarray:
    """Per-row multiclass log loss of ``(n, 3)`` probabilities."""
    picked = proba[np.arange(len(event)), event]
    return -np.log(np.clip(picked, 1e-12, 1.0))


class StageHazardTable:
    """Hazards by (current stage, interval), shrunk towards the interval's overall hazards.

    ``h(stage, k, c) = (n_c + s * h(k, c)) / (n + s)`` with ``s = prior_strength``; the
    overall ``h(k, c)`` carries one pseudo-row spread like the whole training set, so no
    class ever gets probability 0, even with no win at all in the history.
    """

    def __init__(self, *, prior_strength: float, n_intervals: int):
        self.prior_strength = prior_strength
        self.n_intervals = n_intervals

    def fit(self, stages: np.ndarray, k: np.ndarray, event: np.ndarray) -> StageHazardTable:
        counts = np.bincount(event, minlength=3).astype(float)
        share = (counts + 1.0) / (counts.sum() + 3.0)
        per_k = np.zeros((self.n_intervals, 3))
        np.add.at(per_k, (k, event), 1.0)
        self.overall_ = (per_k + share) / (per_k.sum(axis=1, keepdims=True) + 1.0)
        frame = pd.DataFrame({"stage": stages, "k": k, "event": event})
        counts_by = frame.groupby(["stage", "k", "event"]).size().unstack("event", fill_value=0)
        n_c = counts_by.reindex(columns=range(3), fill_value=0).to_numpy(float)
        prior = self.overall_[counts_by.index.get_level_values("k").to_numpy(int)]
        s = self.prior_strength
        rates = (n_c + s * prior) / (n_c.sum(axis=1, keepdims=True) + s)
        self.table_ = pd.DataFrame(rates, index=counts_by.index, columns=list(EVENTS))
        return self

    def predict(self, stages: np.ndarray, k: np.ndarray) -> np.ndarray:
        """``(n, 3)`` hazards for rows at these stages and intervals."""
        keys = pd.MultiIndex.from_arrays([np.asarray(stages, dtype=object), np.asarray(k)])
        out = self.table_.reindex(keys).to_numpy(float, copy=True)
        unseen = np.isnan(out[:, 0])
        out[unseen] = self.overall_[np.asarray(k)[unseen]]
        return out


def shift_log_odds(proba: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """Multiply the won and lost hazards' odds against staying open by ``exp(delta)``."""
    logp = np.log(np.clip(proba, 1e-12, 1.0))
    logp[:, WON] += delta[0]
    logp[:, LOST] += delta[1]
    logp -= logp.max(axis=1, keepdims=True)
    p = np.exp(logp)
    return p / p.sum(axis=1, keepdims=True)


def level_shift(proba: np.ndarray, event: np.ndarray, *, prior: float) -> np.ndarray:
    """The (won, lost) log-odds shift that best fits recent interval rows, with an L2
    penalty of ``prior`` pseudo-events (few recent events barely move the level)."""
    if len(event) == 0:
        return np.zeros(2)

    def loss(delta: np.ndarray) -> float:
        return float(row_log_loss(shift_log_odds(proba, delta), event).sum()) + 0.5 * prior * float(
            delta @ delta
        )

    result = minimize(loss, np.zeros(2), method="L-BFGS-B", bounds=[(-3, 3), (-3, 3)])
    return np.asarray(result.x, float)
