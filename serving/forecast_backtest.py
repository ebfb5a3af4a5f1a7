"""Forecast backtest: forecast each past month at its first day, compare with what was won.

Three methods, differing **only in how they treat the open pipeline**; already-won revenue
(0 here: the origin is the period's start) and the new-deal part (the same history-based
mean and lognormal draw, :func:`serving.forecast.new_deal_history`) are added to every one:

- ``dealcast``: the close model's ``p_win`` x the stage's timing share, with the shared
  logit shock (:mod:`serving.forecast_simulate`);
- ``stage_weighted``: amount x the historical win rate of the deal's current stage (deals
  that entered the stage and closed by the origin, shrunk to the overall rate with
  ``prior_strength`` deals), counted in the period of the deal's ``expected_close_date``;
  deals without one, or with a date before the origin (late deals), are spread evenly over
  the next H days (the month gets its share of them). Its range
  comes from independent Bernoulli draws at those rates (no shared shock);
- ``rep_close_dates``: the amounts of open deals whose ``expected_close_date`` is in the
  period, a point forecast (p10 = p50 = p90 = forecast).

Metrics per method: WAPE = sum|forecast - actual| / sum(actual), bias = sum(forecast -
actual) / sum(actual), coverage = share of periods with p10 <= actual <= p90. For
``dealcast`` the range without the shared shock (``p10_independent`` / ``p90_independent``,
``coverage_p10_p90_independent``) is reported too: what independent deals would claim.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from serving.forecast import (
    ALL,
    QUANTILES,
    Period,
    amounts,
    new_deal_history,
    past_wins,
    shared_shock_sigma,
    timing_shares,
    windows_of,
    won_mask,
)
from serving.forecast_simulate import deal_shares, simulate_new, simulate_open

METHODS = ("dealcast", "stage_weighted", "rep_close_dates")
COLUMNS = (
    "period", "method", "forecast", "p10", "p50", "p90", "actual", "origin", "sigma",
    "new_expected", "p10_independent", "p90_independent",
)  # fmt: skip


def stage_win_rates(
    deals: pd.DataFrame,
    history: pd.DataFrame | None,
    *,
    as_of: pd.Timestamp,
    won_label: str,
    prior_strength: float,
) -> dict[str, float]:
    """Stage -> share won among deals that entered it and closed by ``as_of`` (shrunk)."""
    closed = (deals["closed_at"] <= as_of).to_numpy(bool)
    won = won_mask(deals, won_label)
    overall = float(won[closed].mean()) if closed.any() else 0.0
    rates = {ALL: overall}
    if history is None or history.empty or not closed.any():
        return rates
    done = pd.DataFrame({"deal_id": deals["deal_id"].astype("object"), "won": won})[closed]
    seen = history[history["entered_at"] <= as_of][["deal_id", "stage"]].astype("object")
    seen = seen.drop_duplicates().merge(done, on="deal_id")
    for stage, group in seen.groupby("stage", sort=True):
        n = len(group)
        rates[str(stage)] = (group["won"].sum() + prior_strength * overall) / (n + prior_strength)
    return rates


def _quantiles(total: np.ndarray) -> np.ndarray:
    return np.quantile(total, QUANTILES)


def backtest_origin(
    *,
    deals: pd.DataFrame,
    history: pd.DataFrame | None,
    scored: pd.DataFrame,
    origin: pd.Timestamp,
    horizon_days: int,
    won_label: str,
    draws: int,
    seed: int,
    min_stage_wins: float,
    new_deal_origins: int,
    prior_strength: float,
) -> list[dict]:
    """One row per method for the month starting at ``origin``.

    ``scored`` holds the deals open at ``origin`` with ``deal_id``, ``stage`` and ``p_win``
    from a model that knew nothing after the origin. Only rows of ``deals`` and ``history``
    stamped at or before the origin are used, except for ``actual``.
    """
    end = origin + pd.DateOffset(months=1)
    period = Period(origin.strftime("%Y-%m"), "month", origin, end)
    info = deals.set_index(deals["deal_id"].astype("object"))
    ids = scored["deal_id"].astype("object").to_numpy()
    amount = np.nan_to_num(pd.to_numeric(info["amount"].reindex(ids), errors="coerce").to_numpy())
    expected = (
        pd.DatetimeIndex(info["expected_close_date"].reindex(ids))
        if ("expected_close_date" in info)
        else pd.DatetimeIndex([pd.NaT] * len(ids), tz="UTC")
    )
    in_period = np.asarray((expected >= origin) & (expected < end), bool)
    early = np.asarray(expected.isna() | (expected < origin), bool)
    won = won_mask(deals, won_label)
    closed = deals["closed_at"]
    actual = amounts(deals)[won & ((closed >= origin) & (closed < end)).to_numpy(bool)].sum()
    new = new_deal_history(
        deals[(deals["created_at"] <= origin).to_numpy(bool)], [period], as_of=origin,
        won_label=won_label, origins=new_deal_origins,
    ).iloc[0]  # fmt: skip
    rng = np.random.default_rng(seed)
    new_draw = simulate_new(new["new_mean"], new["new_sd"], draws=draws, rng=rng)
    known = deals[(deals["created_at"] <= origin).to_numpy(bool)]
    wins = past_wins(known, history, as_of=origin, horizon_days=horizon_days, won_label=won_label)
    shares = timing_shares(
        wins, windows_of([period], origin, horizon_days), min_stage_wins=min_stage_wins
    )
    sigma = shared_shock_sigma(known, as_of=origin, won_label=won_label)
    stages = scored["stage"].astype("object").to_numpy()
    p = scored["p_win"].to_numpy(float)
    per_deal = deal_shares(stages, shares)
    out = []
    dc = simulate_open(p, amount, per_deal, sigma=sigma, draws=draws, rng=rng)[:, 0]
    out.append(("dealcast", float((p * amount) @ per_deal[:, 0]), dc))
    # the same without the shared shock, to show what independence would claim
    alone = simulate_open(p, amount, per_deal, sigma=0.0, draws=draws, rng=rng)[:, 0]
    q_alone = _quantiles(alone + new_draw)
    rates = stage_win_rates(
        deals, history, as_of=origin, won_label=won_label, prior_strength=prior_strength
    )
    sp = np.array([rates.get(str(s), rates[ALL]) for s in stages], float)
    spread = np.diff(np.clip(windows_of([period], origin, horizon_days)[0], 0, horizon_days))
    counted = np.where(in_period, 1.0, np.where(early, spread[0] / horizon_days, 0.0))[:, None]
    sw = simulate_open(sp, amount, counted, sigma=0.0, draws=draws, rng=rng)[:, 0]
    out.append(("stage_weighted", float((sp * amount) @ counted[:, 0]), sw))
    rep = float(amount[in_period].sum())
    out.append(("rep_close_dates", rep, None))
    rows = []
    for method, open_mean, draw in out:
        forecast = open_mean + float(new["new_mean"])
        q = _quantiles(draw + new_draw) if draw is not None else np.full(3, forecast)
        rows.append(
            {
                "period": period.label, "method": method, "forecast": forecast,
                "p10": float(q[0]), "p50": float(q[1]), "p90": float(q[2]),
                "actual": float(actual), "origin": origin, "sigma": sigma,
                "new_expected": float(new["new_mean"]),
                "p10_independent": float(q_alone[0]) if method == "dealcast" else np.nan,
                "p90_independent": float(q_alone[2]) if method == "dealcast" else np.nan,
            }
        )  # fmt: skip
    return rows


def backtest_metrics(backtest: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Method -> periods, WAPE, bias and coverage of [p10, p90] (see the module doc)."""
    out = {}
    for method, g in backtest.groupby("method", sort=False):
        actual = g["actual"].to_numpy(float)
        err = g["forecast"].to_numpy(float) - actual
        total = actual.sum()
        inside = (g["p10"].to_numpy(float) <= actual) & (actual <= g["p90"].to_numpy(float))
        out[str(method)] = {
            "periods": int(len(g)),
            "wape": float(np.abs(err).sum() / total) if total > 0 else float("nan"),
            "bias": float(err.sum() / total) if total > 0 else float("nan"),
            "coverage_p10_p90": float(inside.mean()) if len(g) else float("nan"),
        }
        if "p10_independent" in g and g["p10_independent"].notna().all() and len(g):
            lo, hi = g["p10_independent"].to_numpy(float), g["p90_independent"].to_numpy(float)
            inside = (lo <= actual) & (actual <= hi)
            out[str(method)]["coverage_p10_p90_independent"] = float(inside.mean())
    return out
