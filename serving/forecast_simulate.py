"""Monte Carlo of period revenue and the forecast table (see :mod:`serving.forecast`)."""

from __future__ import annotations

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
    n, g = shares.shape
    out = np.zeros((draws, g))
    if n == 0:
        return out
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
        sums = np.bincount(
            key[keep], weights=np.broadcast_to(amount, (c, n))[keep], minlength=c * (g + 1)
        )
        out[lo : lo + c] = sums.reshape(c, g + 1)[:, :g]
    return out


def simulate_new(mean: float, sd: float, *, draws: int, rng: np.random.Generator) -> np.ndarray:
    """Non-negative draws with this mean and sd (lognormal; constant when sd or mean is 0)."""
    if mean <= 0 or sd <= 0:
        return np.full(draws, max(mean, 0.0))
    s2 = np.log1p((sd / mean) ** 2)
    return rng.lognormal(np.log(mean) - s2 / 2, np.sqrt(s2), size=draws)


def revenue_forecast(
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
) -> pd.DataFrame:
    """The forecast table, one row per period (columns :data:`COLUMNS`).

    ``deals`` is the CRM's deals table (for already won and new deals), ``open_deals`` the
    deals open at as_of with ``stage``, ``amount`` and the close model's ``won_<d>d`` curve
    (or, from a model without curves, ``p_win`` within ``horizon_days`` timed by ``wins``,
    the output of :func:`serving.forecast.past_wins`). ``sigmas``: the shared shock's sd
    per period kind (``month``, ``quarter``); each kind is drawn with its own.
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
    grid_draws = {
        kind: simulate_open(p, amount, per_deal, sigma=sigmas[kind], draws=draws, rng=rng)
        for kind in dict.fromkeys(period.kind for period in periods)
    }
    grid_expected = (p * amount) @ per_deal
    won = already_won(deals, periods, as_of=as_of, won_label=won_label)
    new = new_deal_history(
        deals, periods, as_of=as_of, won_label=won_label, origins=new_deal_origins
    )
    rows = []
    for i, period in enumerate(periods):
        cols = _grid_columns(grid, period)
        draw = grid_draws[period.kind][:, cols].sum(axis=1)
        new_draw = simulate_new(new["new_mean"][i], new["new_sd"][i], draws=draws, rng=rng)
        total = won[i] + draw + new_draw
        q = np.quantile(total, QUANTILES)
        open_expected = float(grid_expected[cols].sum())
        rows.append(
            {
                "period": period.label,
                "kind": period.kind,
                "start": period.start,
                "end": period.end,
                "already_won": float(won[i]),
                "open_expected": open_expected,
                "new_expected": float(new["new_mean"][i]),
                "forecast": float(won[i] + open_expected + new["new_mean"][i]),
                "p10": float(q[0]),
                "p50": float(q[1]),
                "p90": float(q[2]),
            }
        )
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _grid_columns(grid: list[Period], period: Period) -> list[int]:
    return [k for k, m in enumerate(grid) if m.start >= period.start and m.end <= period.end]
