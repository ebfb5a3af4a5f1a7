"""Survival estimators for the funnel: Kaplan–Meier and Aalen–Johansen cumulative incidence.

Vectorised numpy (O(n log n) time, O(n) memory), no third-party survival package at run
time; the tests check every number against scikit-survival. Time is in days (floats);
tied times are exactly equal floats. Every curve is a right-continuous step function
evaluated at the distinct times of the sample.

Intervals are pointwise and log(-log) transformed, at :data:`LEVEL`:

* Kaplan–Meier: Greenwood's variance of log S(t) (as R ``survival`` with
  ``conf.type="log-log"`` and scikit-survival's ``conf_type="log-log"``);
* cumulative incidence: Aalen's (1978) variance as written in Pintilie (2006, eq. 4.5),
  the ``var_type="Aalen"`` of scikit-survival, rearranged into cumulative sums so memory
  stays linear in the number of distinct times. Before the first event of a cause the
  log(-log) band collapses to [0, 0]; there the upper bound is the Clopper–Pearson bound
  for no event among the episodes whose status is known (not censored before t);
* KM quantiles (median, p75, p90): the times where the interval band crosses the level
  (Brookmeyer–Crowley style, as R ``survival`` reports quantile intervals). A quantile the
  curve never reaches is NaN ("not reached within the data").
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

#: Two-sided level of every interval the funnel shows.
LEVEL = 0.90
_EPS = np.finfo(float).eps


@dataclass(frozen=True)
class Curve:
    """A step function of days: ``value[i]`` (and its interval) holds on
    ``[days[i], days[i+1])``; before ``days[0]`` the curve is at ``start``.

    ``at_risk[i]`` is the number still at risk just before ``days[i]``; ``se`` is the
    standard error of ``value`` (delta method: Greenwood for Kaplan–Meier, Aalen for
    cumulative incidence).
    """

    days: np.ndarray
    value: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    se: np.ndarray
    at_risk: np.ndarray
    start: float

    def at(self, t: float) -> tuple[float, float, float]:
        """(value, lower, upper) at ``t`` days; NaN when the sample is empty."""
        i = self._index(t)
        if i is None:
            return (np.nan, np.nan, np.nan)
        if i < 0:
            return (self.start, self.start, self.start)
        return (float(self.value[i]), float(self.lower[i]), float(self.upper[i]))

    def se_at(self, t: float) -> float:
        """Standard error of the value at ``t`` days (0 before the first time)."""
        i = self._index(t)
        return np.nan if i is None else 0.0 if i < 0 else float(self.se[i])

    def _index(self, t: float) -> int | None:
        if not len(self.days):
            return None
        return int(np.searchsorted(self.days, t, side="right")) - 1

    def final(self) -> tuple[float, float, float]:
        """(value, lower, upper) at the last observed time: "by the data's end"."""
        return self.at(float(self.days[-1])) if len(self.days) else (np.nan,) * 3


@dataclass(frozen=True)
class _Counts:
    days: np.ndarray  # distinct times, ascending
    events: np.ndarray  # (n_causes + 1, n_times): row 0 any cause, then cause 1..k
    at_risk: np.ndarray  # (n_times,)
    censored_before: np.ndarray  # (n_times,): censored strictly before each time


def _counts(days: np.ndarray, cause: np.ndarray, n_causes: int) -> _Counts:
    days = np.asarray(days, dtype=float)
    cause = np.asarray(cause, dtype=int)
    if days.shape != cause.shape or days.ndim != 1:
        raise ValueError("days and cause must be 1-d arrays of the same length")
    if len(days) and (np.isnan(days).any() or days.min() < 0):
        raise ValueError("days must be finite and >= 0")
    if len(cause) and (cause.min() < 0 or cause.max() > n_causes):
        raise ValueError(f"cause codes must be 0 (censored) .. {n_causes}")
    uniq, inverse = np.unique(days, return_inverse=True)
    n_t = len(uniq)
    total = np.bincount(inverse, minlength=n_t)
    events = np.zeros((n_causes + 1, n_t))
    for k in range(1, n_causes + 1):
        events[k] = np.bincount(inverse[cause == k], minlength=n_t)
    events[0] = events[1:].sum(axis=0)
    at_risk = np.cumsum(total[::-1])[::-1].astype(float)
    censored = total - events[0]
    return _Counts(uniq, events, at_risk, np.cumsum(censored) - censored)


def _z(level: float) -> float:
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    return NormalDist().inv_cdf(0.5 + level / 2)


def _loglog_band(p: np.ndarray, se_log: np.ndarray, level: float) -> tuple[np.ndarray, ...]:
    """Interval of a probability ``p`` from the standard error of ``log p``, on the
    log(-log) scale; 0 where ``p`` is 0, ``p`` itself where ``p`` is 1."""
    pos = p > _EPS
    log_p = np.log(np.where(pos, p, 1.0))
    theta = np.divide(se_log, log_p, out=np.zeros_like(p), where=log_p < -_EPS)
    z = _z(level)
    lower = np.where(pos, np.exp(np.exp(-z * theta) * log_p), 0.0)
    upper = np.where(pos, np.exp(np.exp(z * theta) * log_p), 0.0)
    return lower, upper


def kaplan_meier(days: np.ndarray, event: np.ndarray, *, level: float = LEVEL) -> Curve:
    """Kaplan–Meier survival: ``event`` True where the stay/deal ended at ``days``, False
    where it was still running then (censored)."""
    c = _counts(days, np.asarray(event, dtype=bool).astype(int), 1)
    d, n = c.events[0], c.at_risk
    surv = np.cumprod(1.0 - np.divide(d, n, out=np.zeros_like(d), where=n > 0))
    greenwood = np.divide(d, n * (n - d), out=np.zeros_like(d), where=(d > 0) & (n > d))
    se_log = np.sqrt(np.cumsum(greenwood))
    lower, upper = _loglog_band(surv, se_log, level)
    return Curve(c.days, surv, lower, upper, surv * se_log, n, start=1.0)


def km_quantile(curve: Curve, p: float) -> tuple[float, float, float]:
    """The ``p`` quantile of the time (e.g. 0.5 = median) and its interval: the first
    time the curve (its lower band, its upper band) drops to ``1 - p`` or below; NaN where
    it never does within the data."""
    cut = 1.0 - p + 1e-12

    def first(values: np.ndarray) -> float:
        hit = np.flatnonzero(values <= cut)
        return float(curve.days[hit[0]]) if len(hit) else np.nan

    return first(curve.value), first(curve.lower), first(curve.upper)


def cumulative_incidence(
    days: np.ndarray, cause: np.ndarray, *, n_causes: int, level: float = LEVEL
) -> list[Curve]:
    """Aalen–Johansen cumulative incidence of each competing cause.

    ``cause`` is 0 for censored (still open at the data's end) and 1..``n_causes`` for the
    event that ended the episode. Returns ``n_causes + 1`` curves: index 0 is "any cause"
    (1 - Kaplan–Meier of all causes, Greenwood interval), index k the incidence of cause k.
    """
    c = _counts(days, cause, n_causes)
    n = c.at_risk
    hazard = np.divide(c.events, n, out=np.zeros_like(c.events), where=n > 0)
    surv = np.cumprod(1.0 - hazard[0])
    before = np.r_[1.0, surv[:-1]]
    cif = np.cumsum(hazard[1:] * before, axis=1)
    km = kaplan_meier(days, np.asarray(cause) > 0, level=level)
    curves = [Curve(c.days, 1 - surv, 1 - km.upper, 1 - km.lower, km.se, n, start=0.0)]
    se = np.sqrt(np.clip(_aalen_variance(c.events, n, before, cif), 0, None))
    known = len(days) - c.censored_before  # status known at t: followed up to t at least
    for k in range(n_causes):
        se_log = np.divide(se[k], cif[k], out=np.zeros_like(cif[k]), where=se[k] > _EPS**0.5)
        lower, upper = _loglog_band(cif[k], se_log, level)
        none_yet = np.cumsum(c.events[k + 1]) == 0
        upper = np.where(none_yet, _zero_events_upper(known, level), upper)
        curves.append(Curve(c.days, cif[k], lower, upper, se[k], n, start=0.0))
    return curves


def _zero_events_upper(known: np.ndarray, level: float) -> np.ndarray:
    """Upper bound of a proportion with no event among ``known`` (Clopper–Pearson,
    two-sided ``level``): where the log(-log) band would collapse to [0, 0]."""
    alpha = (1 - level) / 2
    return np.where(known > 0, 1 - alpha ** (1 / np.maximum(known, 1)), 1.0)


def _aalen_variance(
    events: np.ndarray, n: np.ndarray, before: np.ndarray, cif: np.ndarray
) -> np.ndarray:
    """Aalen's variance of each cumulative incidence (Pintilie 2006, eq. 4.5).

    The textbook sums over pairs of times, sum_k<=j (F(t_j) - F(t_k))^2 a_k, are expanded
    into F(t_j)^2 A_j - 2 F(t_j) B_j + C_j with running sums A, B, C, so memory stays O(n).
    """
    d, d_k = events[0], events[1:]
    den_a = (n - 1) * (n - d)
    a = np.divide(d, den_a, out=np.zeros_like(d), where=den_a > 0)
    den_b = (n - 1) * n**2
    b = np.divide(1.0, den_b, out=np.zeros_like(d), where=den_b > 0)
    den_c = n * (n - d) * (n - 1)
    c = np.divide(before, den_c, out=np.zeros_like(d), where=den_c > 0)
    var_a = cif**2 * np.cumsum(a) - 2 * cif * np.cumsum(cif * a, axis=1)
    var_a += np.cumsum(cif**2 * a, axis=1)
    var_b = np.cumsum((n - d_k) * d_k * b * before**2, axis=1)
    w = d_k * (n - d_k) * c
    var_c = -2 * (cif * np.cumsum(w, axis=1) - np.cumsum(cif * w, axis=1))
    return var_a + var_b + var_c
