"""Stage progression: a semi-Markov process over the funnel's open stages.

A deal in open stage ``i`` (of ``K``) first draws where it goes next, then how long it
stays. Destinations and their logits (relative to ``lost``, logit 0):

* pass: advance to ``i+1`` or, from the last stage, win: ``c_K + PASS_SLOPE*r_i + b_K*q``
* skip to ``i+2`` (only if that is an open stage): pass logit + ``SKIP_OFFSET``
* early win from the second-to-last stage: pass logit + ``EARLY_WIN_OFFSET``
* regress to ``i-1`` (not from the first stage): ``REGRESS_LOGIT + REGRESS_QUALITY*q``
* lost, from any stage

``q`` is the deal's hidden quality, ``r_i = i/(K-1)`` its relative stage position (1 for a
single-stage funnel), ``b_K = QUALITY_EFFECT/sqrt(K)`` so that quality matters about as much
whatever the number of stages, and ``c_K`` is solved so that a deal entering the first
stage with quality ~ N(0, REFERENCE_SD) wins with probability TARGET_WIN on average.

Dwell times are lognormal given the destination: medians grow with the stage position,
the deal's ``dwell_scale`` (bigger deals are slower, better ones faster) and are much
longer before a loss (three losses in ten are quick disqualifications, the rest stall for
about three extra weeks, with a long tail).
Time in stage therefore carries signal: a deal that lingers is more likely on its way out.
Because the destination does not depend on the dwell, the jump chain is an absorbing
Markov chain per deal, and :func:`win_probability` gives the exact probability of winning
(the quarter-end pull-in moves close times, never outcomes; only the time-in-stage
posterior ignores it).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

ADVANCE, SKIP, WON, REGRESS, LOST = range(5)
N_MOVES = 5

PASS_SLOPE = 1.0
QUALITY_EFFECT = 1.5
SKIP_OFFSET, EARLY_WIN_OFFSET = -2.6, -2.4
REGRESS_LOGIT, REGRESS_QUALITY = -2.4, -0.2
TARGET_WIN, REFERENCE_SD = 0.22, 1.5

#: Median days through all open stages of a won deal of dwell_scale 1.
MEDIAN_CYCLE_DAYS = 42.0
#: Stage i gets a share of the cycle proportional to 1 + STAGE_WEIGHT_SLOPE * r_i.
STAGE_WEIGHT_SLOPE = 1.2
DWELL_SIGMA = 0.8
#: Median multiplier of each destination (lost is a mixture, see QUICK_LOSS_*/STALL_*).
DEST_FACTOR = {ADVANCE: 1.0, SKIP: 1.15, WON: 1.1, REGRESS: 1.3}
#: Lost: QUICK_LOSS_SHARE are quick disqualifications (median x QUICK_LOSS_FACTOR), the
#: rest stall: median x STALL_FACTOR + STALL_DAYS (times dwell_scale), a longer tail.
QUICK_LOSS_SHARE, QUICK_LOSS_FACTOR = 0.3, 0.45
STALL_FACTOR, STALL_DAYS, STALL_SIGMA = 1.0, 20.0, 0.9
MIN_DWELL_DAYS = 0.01
#: Quarter-end push: a close this many days into a quarter is pulled back before the
#: boundary (into its last PUSH_BEFORE days, never before the stage was entered) with
#: these probabilities.
PUSH_AFTER, PUSH_BEFORE, PUSH_WON, PUSH_LOST = 21.0, 10.0, 0.5, 0.2
MAX_STEPS = 60


@dataclass(frozen=True)
class Paths:
    """Simulated stage paths of all deals, beyond any as_of.

    ``deal``/``state``/``time`` are the stage-entry rows sorted by deal then time (state
    0..K-1 = open stage, K = won, K+1 = lost); the first row of a deal is its entry stage
    at creation. ``won``/``closed`` give each deal's eventual outcome and close time.
    """

    deal: np.ndarray
    state: np.ndarray
    time: np.ndarray
    won: np.ndarray
    closed: np.ndarray


def positions(n_stages: int) -> np.ndarray:
    """Relative position r in [0, 1] of each open stage (1.0 for a single stage)."""
    if n_stages == 1:
        return np.ones(1)
    return np.arange(n_stages) / (n_stages - 1)


def quality_slope(n_stages: int) -> float:
    """Per-stage effect of quality on the pass logit."""
    return QUALITY_EFFECT / np.sqrt(n_stages)


def transition_probs(quality: np.ndarray, stage: np.ndarray, n_stages: int) -> np.ndarray:
    """Probabilities (n, N_MOVES) of ADVANCE, SKIP, WON, REGRESS, LOST for each deal."""
    return _transition_probs(quality, stage, n_stages, pass_intercept(n_stages))


def _transition_probs(
    quality: np.ndarray, stage: np.ndarray, n_stages: int, intercept: float
) -> np.ndarray:
    q = np.asarray(quality, dtype=np.float64)
    stage = np.asarray(stage)
    last = stage == n_stages - 1
    pass_logit = intercept + PASS_SLOPE * positions(n_stages)[stage] + quality_slope(n_stages) * q
    logits = np.full((len(q), N_MOVES), -np.inf)
    logits[:, ADVANCE] = np.where(last, -np.inf, pass_logit)
    logits[:, SKIP] = np.where(stage + 2 <= n_stages - 1, pass_logit + SKIP_OFFSET, -np.inf)
    won = np.where(stage == n_stages - 2, pass_logit + EARLY_WIN_OFFSET, -np.inf)
    logits[:, WON] = np.where(last, pass_logit, won)
    logits[:, REGRESS] = np.where(stage >= 1, REGRESS_LOGIT + REGRESS_QUALITY * q, -np.inf)
    logits[:, LOST] = 0.0
    weights = np.exp(logits - logits.max(axis=1, keepdims=True))
    return weights / weights.sum(axis=1, keepdims=True)


def _absorption_won(quality: np.ndarray, n_stages: int, intercept: float) -> np.ndarray:
    """P(eventually won | entering open stage i) for each deal: shape (n, K)."""
    q = np.asarray(quality, dtype=np.float64)
    n, k = len(q), n_stages
    stages = np.tile(np.arange(k), n)
    probs = _transition_probs(np.repeat(q, k), stages, k, intercept).reshape(n, k, N_MOVES)
    step = np.zeros((n, k, k))
    idx = np.arange(k)
    for move, shift in ((ADVANCE, 1), (SKIP, 2), (REGRESS, -1)):
        ok = (idx + shift >= 0) & (idx + shift < k)
        step[:, idx[ok], idx[ok] + shift] = probs[:, idx[ok], move]
    system = np.eye(k) - step
    return np.linalg.solve(system, probs[:, :, WON, None])[:, :, 0]


@lru_cache(maxsize=64)
def pass_intercept(n_stages: int) -> float:
    """The pass-logit intercept c_K that makes the reference deal win TARGET_WIN."""
    grid = np.linspace(-4.0, 4.0, 161)
    weight = np.exp(-0.5 * grid**2)
    weight /= weight.sum()
    q = grid * REFERENCE_SD
    lo, hi = -8.0, 8.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        p = float(weight @ _absorption_won(q, n_stages, mid)[:, 0])
        lo, hi = (mid, hi) if p < TARGET_WIN else (lo, mid)
    return 0.5 * (lo + hi)


def win_probability(
    quality: np.ndarray,
    stage: np.ndarray,
    n_stages: int,
    *,
    days_in_stage: np.ndarray | None,
    dwell_scale: np.ndarray | None,
) -> np.ndarray:
    """The true P(eventually won) of deals in open stage ``stage`` (0-based).

    With ``days_in_stage=None`` it is the probability at the moment of entering the stage
    (``p_win_true`` in the truth frame is this at the entry stage). Given the days already
    spent in the stage and the deal's ``dwell_scale`` it is the posterior that accounts for
    the stall: destinations whose dwell would likely have ended by now lose weight.
    """
    q = np.asarray(quality, dtype=np.float64)
    stage = np.asarray(stage, dtype=np.int64)
    absorbed = _absorption_won(q, n_stages, pass_intercept(n_stages))
    rows = np.arange(len(q))
    if days_in_stage is None:
        return absorbed[rows, stage]
    if dwell_scale is None:
        raise ValueError("days_in_stage needs dwell_scale")
    from scipy.special import log_ndtr  # scipy comes with scikit-learn

    probs = transition_probs(q, stage, n_stages)
    days = np.maximum(np.asarray(days_in_stage, dtype=np.float64), MIN_DWELL_DAYS)
    base = _stage_median(stage, n_stages) * np.asarray(dwell_scale, dtype=np.float64)

    def survival(median: np.ndarray, sigma: float) -> np.ndarray:
        return np.exp(log_ndtr(-(np.log(days) - np.log(median)) / sigma))

    surv = np.empty_like(probs)
    for move, factor in DEST_FACTOR.items():
        surv[:, move] = survival(base * factor, DWELL_SIGMA)
    stall = _stall_median(stage, n_stages) * np.asarray(dwell_scale, dtype=np.float64)
    surv[:, LOST] = QUICK_LOSS_SHARE * survival(base * QUICK_LOSS_FACTOR, DWELL_SIGMA) + (
        1 - QUICK_LOSS_SHARE
    ) * survival(stall, STALL_SIGMA)
    posterior = probs * surv
    posterior /= np.maximum(posterior.sum(axis=1, keepdims=True), 1e-300)
    value = np.zeros_like(probs)
    value[:, WON] = 1.0
    for move, shift in ((ADVANCE, 1), (SKIP, 2), (REGRESS, -1)):
        target = np.clip(stage + shift, 0, n_stages - 1)
        value[:, move] = absorbed[rows, target]
    return (posterior * value).sum(axis=1)


def _stage_median(stage: np.ndarray, n_stages: int) -> np.ndarray:
    """Median days in open stage ``stage`` before advancing, for dwell_scale 1."""
    weights = 1.0 + STAGE_WEIGHT_SLOPE * positions(n_stages)
    return MEDIAN_CYCLE_DAYS * (weights / weights.sum())[stage]


def _stall_median(stage: np.ndarray, n_stages: int) -> np.ndarray:
    """Median days a stalling deal lingers in ``stage`` before it is lost (scale 1)."""
    return _stage_median(stage, n_stages) * STALL_FACTOR + STALL_DAYS


def typical_cycle_days(entry: np.ndarray, n_stages: int) -> np.ndarray:
    """Median days from entering stage ``entry`` to a win along the straight path."""
    weights = 1.0 + STAGE_WEIGHT_SLOPE * positions(n_stages)
    remaining = np.cumsum((weights / weights.sum())[::-1])[::-1]
    return MEDIAN_CYCLE_DAYS * remaining[entry]


def draw_dwell(
    rng: np.random.Generator, stage: np.ndarray, move: np.ndarray, n_stages: int, scale: np.ndarray
) -> np.ndarray:
    """Days spent in ``stage`` before making ``move`` (lognormal given the move)."""
    factor = np.ones(len(stage))
    sigma = np.full(len(stage), DWELL_SIGMA)
    for m, f in DEST_FACTOR.items():
        factor[move == m] = f
    stall = (move == LOST) & (rng.random(len(stage)) >= QUICK_LOSS_SHARE)
    factor[(move == LOST) & ~stall] = QUICK_LOSS_FACTOR
    sigma[stall] = STALL_SIGMA
    median = np.where(
        stall, _stall_median(stage, n_stages), _stage_median(stage, n_stages) * factor
    )
    median = median * scale
    return np.maximum(median * np.exp(sigma * rng.standard_normal(len(stage))), MIN_DWELL_DAYS)


def simulate(
    rng: np.random.Generator,
    *,
    quality: np.ndarray,
    entry: np.ndarray,
    created: np.ndarray,
    dwell_scale: np.ndarray,
    n_stages: int,
    quarter_starts: np.ndarray,
) -> Paths:
    """Run every deal from its entry stage to won/lost, all deals at once, step by step.

    Deals still open after MAX_STEPS moves (endless regress loops; vanishingly rare) are
    closed lost after a stall.
    """
    n = len(quality)
    stage = np.asarray(entry, dtype=np.int64).copy()
    now = np.asarray(created, dtype=np.float64).copy()
    won = np.zeros(n, dtype=bool)
    rows = [(np.arange(n), stage.copy(), now.copy())]
    active = np.arange(n)
    for step in range(MAX_STEPS + 1):
        if len(active) == 0:
            break
        if step < MAX_STEPS:
            cum = np.cumsum(transition_probs(quality[active], stage[active], n_stages), axis=1)
            move = (rng.random(len(active))[:, None] > cum[:, :-1]).sum(axis=1)
        else:
            move = np.full(len(active), LOST)
        dwell = draw_dwell(rng, stage[active], move, n_stages, dwell_scale[active])
        start = now[active]
        end = start + dwell
        terminal = (move == WON) | (move == LOST)
        end[terminal] = _quarter_push(
            rng, start[terminal], end[terminal], move[terminal] == WON, quarter_starts
        )
        nxt = stage[active] + np.select(
            [move == ADVANCE, move == SKIP, move == REGRESS], [1, 2, -1], 0
        )
        nxt = np.where(move == WON, n_stages, np.where(move == LOST, n_stages + 1, nxt))
        stage[active], now[active] = nxt, end
        won[active[move == WON]] = True
        rows.append((active.copy(), nxt, end))
        active = active[~terminal]
    deal, state, time = (np.concatenate(parts) for parts in zip(*rows, strict=True))
    order = np.lexsort((time, deal))
    return Paths(deal[order], state[order].astype(np.int16), time[order], won, now)


def _quarter_push(
    rng: np.random.Generator,
    start: np.ndarray,
    close: np.ndarray,
    won: np.ndarray,
    quarter_starts: np.ndarray,
) -> np.ndarray:
    """Pull closes that land early in a quarter back before its start (reps push to book)."""
    boundary = quarter_starts[np.searchsorted(quarter_starts, close, side="right") - 1]
    chance = np.where(won, PUSH_WON, PUSH_LOST)
    earliest = np.maximum(boundary - PUSH_BEFORE, start + MIN_DWELL_DAYS)
    pushed = (
        (close - boundary < PUSH_AFTER)
        & (earliest < boundary - MIN_DWELL_DAYS)
        & (rng.random(len(close)) < chance)
    )
    pulled = earliest + rng.random(len(close)) * (boundary - MIN_DWELL_DAYS - earliest)
    return np.where(pushed, pulled, close)
