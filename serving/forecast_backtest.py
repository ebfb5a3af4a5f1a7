"""Forecast backtest: forecast past periods with only what was known at an origin inside
them, compare with what was won. Periods are calendar months forecast at their first day and
calendar quarters forecast at their first day and at mid-quarter (the 15th of the middle
month); revenue already won between the period's start and the origin is counted as known.

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

from serving.calendar_clock import calendar_clock_at
from serving.forecast import (
    ALL,
    QUANTILES,
    Period,
    amounts,
    new_deal_history,
    open_pipeline,
    past_wins,
    shared_shock_sigma,
    timing_shares,
    windows_of,
    won_mask,
)
from serving.forecast_simulate import deal_shares, simulate_new, simulate_open

METHODS = ("dealcast", "stage_weighted", "rep_close_dates")
COLUMNS = (
    "period", "kind", "origin_at", "method", "forecast", "p10", "p50", "p90", "actual",
    "origin", "sigma", "already_won", "new_expected", "p10_independent", "p90_independent",
)  # fmt: skip


def backtest_periods(
    cutoff: pd.Timestamp, data_end: pd.Timestamp
) -> list[tuple[Period, pd.Timestamp, str]]:
    """(period, origin, ``start``/``mid``) of every whole month and quarter after ``cutoff``
    that ends by ``data_end``: months from their first day, quarters from their first day
    and from mid-quarter."""
    out = []
    month = cutoff
    while month + pd.DateOffset(months=1) <= data_end:
        out.append(
            (
                Period(month.strftime("%Y-%m"), "month", month, month + pd.DateOffset(months=1)),
                month,
                "start",
            )
        )
        month = month + pd.DateOffset(months=1)
    q = cutoff.replace(month=3 * ((cutoff.month - 1) // 3) + 1)
    q = q if q >= cutoff else q + pd.DateOffset(months=3)
    while q + pd.DateOffset(months=3) <= data_end:
        period = Period(
            f"{q.year}-Q{(q.month - 1) // 3 + 1}", "quarter", q, q + pd.DateOffset(months=3)
        )
        mid = q + pd.DateOffset(months=1, days=14)
        out += [(period, q, "start"), (period, mid, "mid")]
        q = q + pd.DateOffset(months=3)
    return out


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
    period: Period,
    origin: pd.Timestamp,
    horizon_days: int,
    won_label: str,
    draws: int,
    seed: int,
    min_stage_wins: float,
    new_deal_origins: int,
    prior_strength: float,
    calendar_prior_days: float,
) -> list[dict]:
    """One row per method for ``period`` forecast at ``origin`` (inside it).

    ``scored`` holds the deals open at ``origin`` with ``deal_id``, ``stage``, ``p_win`` and
    (from a hazard model) the ``won_<d>d`` curve, from a model that knew nothing after the
    origin. Only rows of ``deals`` and ``history`` stamped at or before the origin are
    used, except for ``actual``.
    """
    end = period.end
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
    actual = amounts(deals)[won & ((closed >= period.start) & (closed < end)).to_numpy(bool)].sum()
    done = amounts(deals)[won & ((closed >= period.start) & (closed <= origin)).to_numpy(bool)]
    already = float(done.sum())
    new = new_deal_history(
        deals[(deals["created_at"] <= origin).to_numpy(bool)], [period], as_of=origin,
        won_label=won_label, origins=new_deal_origins,
    ).iloc[0]  # fmt: skip
    rng = np.random.default_rng(seed)
    new_draw = simulate_new(new["new_mean"], new["new_sd"], draws=draws, rng=rng)
    known = deals[(deals["created_at"] <= origin).to_numpy(bool)]
    sigma = shared_shock_sigma(known, as_of=origin, won_label=won_label, kind=period.kind)
    stages = scored["stage"].astype("object").to_numpy()

    def stage_shares() -> np.ndarray:
        wins = past_wins(
            known, history, as_of=origin, horizon_days=horizon_days, won_label=won_label
        )
        windows = windows_of([period], origin, horizon_days)
        return deal_shares(stages, timing_shares(wins, windows, min_stage_wins=min_stage_wins))

    w = calendar_clock_at(known, as_of=origin, won_label=won_label, prior_days=calendar_prior_days)
    p, per_deal = open_pipeline(scored, lambda h: windows_of([period], origin, h), stage_shares, w)
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
    position = "start" if origin == period.start else "mid"
    q_alone = q_alone + already
    for method, open_mean, draw in out:
        forecast = already + open_mean + float(new["new_mean"])
        q = already + _quantiles(draw + new_draw) if draw is not None else np.full(3, forecast)
        rows.append(
            {
                "period": period.label, "kind": period.kind, "origin_at": position,
                "method": method, "forecast": forecast,
                "p10": float(q[0]), "p50": float(q[1]), "p90": float(q[2]),
                "actual": float(actual), "origin": origin, "sigma": sigma,
                "already_won": already, "new_expected": float(new["new_mean"]),
                "p10_independent": float(q_alone[0]) if method == "dealcast" else np.nan,
                "p90_independent": float(q_alone[2]) if method == "dealcast" else np.nan,
            }
        )  # fmt: skip
    return rows


def backtest_metrics(backtest: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Method -> periods, WAPE, bias and coverage of [p10, p90] (see the module doc), for
    months forecast at their start (the headline) and, under ``by_horizon``, for each
    (kind, origin) pair such as ``quarter_at_mid``."""
    months = backtest[(backtest["kind"] == "month") & (backtest["origin_at"] == "start")]
    out = _metrics(months)
    groups = backtest.groupby(["kind", "origin_at", "method"], sort=False)
    for (kind, at, method), g in groups:
        horizons = out.setdefault(str(method), {}).setdefault("by_horizon", {})
        horizons[f"{kind}_at_{at}"] = _metrics(g)[str(method)]
    return out


def _metrics(backtest: pd.DataFrame) -> dict[str, dict[str, float]]:
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
