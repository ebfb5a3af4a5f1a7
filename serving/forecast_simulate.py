"""Monte Carlo of period revenue and the forecast table (see :mod:`serving.forecast`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from serving.calendar_clock import calendar_clock_at
from serving.forecast import (
    ALL,
    QUANTILES,
    Period,
    already_won,
    grid_for,
    month_periods,
    new_deal_history,
    open_pipeline,
    quarter_periods,
    timing_shares,
    windows_of,
)
from serving.forecast_groups import COLUMNS as GROUP_COLUMNS
from serving.forecast_groups import Grouping, group_rows, won_by_group

COLUMNS = (
    "period",
    "kind",
    "start",
    "end",
    "already_won",
    "open_expected",
    "new_expected",
    "forecast",
    "p10",
    "p50",
    "p90",
)


def deal_shares(stages: np.ndarray, shares: dict[str, np.ndarray]) -> np.ndarray:
    """Per-deal timing shares (deals x windows); unknown stages get the all-stage shares."""
    return (
        np.vstack([shares.get(str(s), shares[ALL]) for s in stages])
        if len(stages)
        else (np.zeros((0, len(shares[ALL]))))
    )


def simulate_open(
    p: np.ndarray,
    amount: np.ndarray,
    shares: np.ndarray,
    *,
    sigma: float,
    draws: int,
    rng: np.random.Generator,
    chunk: int = 2000,
) -> np.ndarray:
    """Open-pipeline revenue per draw and window (draws x windows).

    Per draw: a shared z ~ N(0, sigma^2) on every deal's logit(p); each deal wins with
    sigmoid(logit p + z), then closes in window k with probability ``shares[i, k]`` (the
    remaining share: after the last window, not counted); amounts are exact.
    """
    return simulate_open_by(p, amount, shares, sigma=sigma, draws=draws, rng=rng, chunk=chunk)[0]


def simulate_open_by(
    p: np.ndarray,
    amount: np.ndarray,
    shares: np.ndarray,
    *,
    sigma: float,
    draws: int,
    rng: np.random.Generator,
    codes: Sequence[tuple[np.ndarray, int]] = (),
    fold: np.ndarray | None = None,
    chunk: int = 2000,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """(total, per grouping) open-pipeline revenue from one set of draws.

    ``total`` is :func:`simulate_open`'s (the random numbers drawn do not depend on
    ``codes``, so the total is the same with or without groupings). For each ``(code,
    size)`` of ``codes`` (``code``: every deal's group, 0 to size - 1) the same draws are
    summed within each group: draws x size x columns, the windows added up into columns
    by ``fold`` (windows x columns of 0/1; the windows themselves without it). A
    grouping's groups therefore add up to the total draw by draw.
    """
    n, g = shares.shape
    fold = np.eye(g) if fold is None else np.asarray(fold, float)
    out = np.zeros((draws, g))
    grouped = [np.zeros((draws, size, fold.shape[1])) for _, size in codes]
    if n == 0:
        return out, grouped
    p = np.clip(np.asarray(p, float), 1e-9, 1 - 1e-9)
    logit = np.log(p / (1 - p))
    cum = np.cumsum(shares, axis=1)
    amount = np.asarray(amount, float)
    for lo in range(0, draws, chunk):
        c = min(chunk, draws - lo)
        z = rng.normal(0.0, sigma, size=(c, 1)) if sigma > 0 else np.zeros((c, 1))
        won = rng.random((c, n)) < 1 / (1 + np.exp(-(logit + z)))
        v = rng.random((c, n))
        window = (v[:, :, None] >= cum[None, :, :]).sum(axis=2)  # g = beyond every window
        key = np.where(won, np.arange(c)[:, None] * (g + 1) + window, -1)
        keep = key >= 0
        weights = np.broadcast_to(amount, (c, n))[keep]
        sums = np.bincount(key[keep], weights=weights, minlength=c * (g + 1))
        out[lo : lo + c] = sums.reshape(c, g + 1)[:, :g]
        for (code, size), target in zip(codes, grouped, strict=True):
            cell = (np.arange(c)[:, None] * size + np.asarray(code)[None, :]) * (g + 1) + window
            per = np.bincount(cell[keep], weights=weights, minlength=c * size * (g + 1))
            target[lo : lo + c] = per.reshape(c, size, g + 1)[:, :, :g] @ fold
    return out, grouped


def simulate_new(mean: float, sd: float, *, draws: int, rng: np.random.Generator) -> np.ndarray:
    """Non-negative draws with this mean and sd (lognormal; constant when sd or mean is 0)."""
    if mean <= 0 or sd <= 0:
        return np.full(draws, max(mean, 0.0))
    s2 = np.log1p((sd / mean) ** 2)
    return rng.lognormal(np.log(mean) - s2 / 2, np.sqrt(s2), size=draws)


def revenue_forecast(**kwargs) -> pd.DataFrame:
    """The forecast table, one row per period (columns :data:`COLUMNS`): the total of
    :func:`revenue_forecast_by` (same keyword arguments, no grouping)."""
    return revenue_forecast_by(**kwargs)[0]


def revenue_forecast_by(
    *,
    deals: pd.DataFrame,
    open_deals: pd.DataFrame,
    wins: pd.DataFrame,
    as_of: pd.Timestamp,
    months: int,
    quarters: int,
    horizon_days: int,
    won_label: str,
    sigmas: dict[str, float],
    draws: int,
    seed: int,
    min_stage_wins: float,
    new_deal_origins: int,
    calendar_prior_days: float,
    groupings: Sequence[Grouping] = (),
) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """(the forecast table, one row per period (columns :data:`COLUMNS`); per grouping's
    ``by`` its table (:data:`serving.forecast_groups.COLUMNS`), from the same draws).

    ``deals`` is the CRM's deals table (for already won and new deals), ``open_deals`` the
    deals open at as_of with ``deal_id``, ``stage``, ``amount`` and the close model's
    ``won_<d>d`` curve (or, from a model without curves, ``p_win`` within
    ``horizon_days`` timed by ``wins``, the output of :func:`serving.forecast.past_wins`).
    ``sigmas``: the shared shock's sd per period kind (``month``, ``quarter``); each kind
    is drawn with its own. The total does not depend on ``groupings``.
    """
    periods = month_periods(as_of, months) + quarter_periods(as_of, quarters)
    grid = grid_for(periods, as_of)

    def stage_shares() -> np.ndarray:
        shares = timing_shares(
            wins, windows_of(grid, as_of, horizon_days), min_stage_wins=min_stage_wins
        )
        return deal_shares(open_deals["stage"].astype("object").to_numpy(), shares)

    amount = np.nan_to_num(pd.to_numeric(open_deals["amount"], errors="coerce").to_numpy(float))
    w = calendar_clock_at(deals, as_of=as_of, won_label=won_label, prior_days=calendar_prior_days)
    p, per_deal = open_pipeline(open_deals, lambda h: windows_of(grid, as_of, h), stage_shares, w)
    rng = np.random.default_rng(seed)
    codes = [(g.codes(open_deals["deal_id"]), g.size) for g in groupings]
    drawn = {
        kind: simulate_open_by(p, amount, per_deal, sigma=sigmas[kind], draws=draws, rng=rng,
                               codes=codes, fold=_fold(grid, periods, kind))
        for kind in dict.fromkeys(period.kind for period in periods)
    }  # fmt: skip
    grid_expected = (p * amount) @ per_deal
    won = already_won(deals, periods, as_of=as_of, won_label=won_label)
    new = new_deal_history(
        deals, periods, as_of=as_of, won_label=won_label, origins=new_deal_origins
    )
    rows, new_draws = [], []
    for i, period in enumerate(periods):
        cols = _grid_columns(grid, period)
        draw = drawn[period.kind][0][:, cols].sum(axis=1)
        new_draws.append(simulate_new(new["new_mean"][i], new["new_sd"][i], draws=draws, rng=rng))
        total = won[i] + draw + new_draws[-1]
        q = np.quantile(total, QUANTILES)
        rows.append(_total_row(period, won[i], float(grid_expected[cols].sum()),
                               float(new["new_mean"][i]), q))  # fmt: skip
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    by = {
        g.by: _group_table(g, j, periods, drawn, codes[j][0], deals=deals, as_of=as_of,
                           won_label=won_label, open_means=(p * amount)[:, None] * per_deal,
                           grid=grid, new_draws=new_draws, new_means=new["new_mean"])
        for j, g in enumerate(groupings)
    }  # fmt: skip
    return table, by


def _total_row(period: Period, won: float, open_expected: float, new: float, q) -> dict:
    return {
        "period": period.label, "kind": period.kind, "start": period.start, "end": period.end,
        "already_won": float(won), "open_expected": open_expected, "new_expected": new,
        "forecast": float(won + open_expected + new),
        "p10": float(q[0]), "p50": float(q[1]), "p90": float(q[2]),
    }  # fmt: skip


def _fold(grid: list[Period], periods: list[Period], kind: str) -> np.ndarray:
    """Grid months x the periods of ``kind``: 1 where the month lies in the period."""
    mine = [period for period in periods if period.kind == kind]
    fold = np.zeros((len(grid), len(mine)))
    for j, period in enumerate(mine):
        fold[_grid_columns(grid, period), j] = 1.0
    return fold


def _group_table(
    grouping: Grouping, j: int, periods: list[Period], drawn: dict, code: np.ndarray, *,
    deals: pd.DataFrame, as_of: pd.Timestamp, won_label: str, open_means: np.ndarray,
    grid: list[Period], new_draws: list[np.ndarray], new_means,
) -> pd.DataFrame:  # fmt: skip
    """Grouping ``j``'s table: its groups' rows per period, in the total's draws."""
    size = grouping.size
    won = won_by_group(deals, periods, grouping.codes(deals["deal_id"]), size, as_of=as_of,
                       won_label=won_label)  # fmt: skip
    count = np.bincount(code, minlength=size)
    rows, seen = [], dict.fromkeys(drawn, 0)
    for i, period in enumerate(periods):
        column, seen[period.kind] = seen[period.kind], seen[period.kind] + 1
        expected = np.bincount(code, weights=open_means[:, _grid_columns(grid, period)].sum(1),
                               minlength=size)  # fmt: skip
        rows += group_rows(grouping, period, won=won[i], open_expected=expected,
                           open_draws=drawn[period.kind][1][j][:, :, column],
                           open_deals=count, new_draw=new_draws[i],
                           new_mean=float(new_means[i]))  # fmt: skip
    return pd.DataFrame(rows, columns=list(GROUP_COLUMNS))


def _grid_columns(grid: list[Period], period: Period) -> list[int]:
    return [k for k, m in enumerate(grid) if m.start >= period.start and m.end <= period.end]
