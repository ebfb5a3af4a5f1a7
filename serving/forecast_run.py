"""The forecast backtest run end to end (pure: a CRM and the caller's close-model fit in, rows
and metrics out): the cutoff and origins (:func:`backtest_plan`), the open deals scored at each
origin (:func:`scored_open_deals`) and one :func:`serving.forecast_backtest.backtest_origin`
per (period, origin) (:func:`forecast_backtest`).

The close model is refitted as production would have refitted it: at the plan's cutoff and
then every ``refit_months`` (:func:`refit_dates`), each fit by the caller's ``fit_close``
with only the labels known at its date (``dealcast train`` fits with the champion's
training settings). Each origin is scored by the latest model fitted at or before it, with
features, timing, sigma, stage rates and new-deal history as known at the origin. (One
model for 18 months would be judged on a history a third as long as the one it forecasts
from: on the default data it over-forecast open-pipeline revenue by a quarter.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from crm.data import CRMData
from crm.schemas import Funnel
from features.spec import FeatureSpec
from serving.forecast import Period
from serving.forecast_backtest import (
    COLUMNS,
    METHODS,
    backtest_metrics,
    backtest_origin,
    backtest_periods,
)

DEFINITIONS = {
    "period": "calendar month forecast at its first day (00:00 UTC); calendar quarter "
    "forecast at its first day and at mid-quarter (the 15th of its middle month), revenue "
    "already won by then counted as known (metrics under by_horizon)",
    "actual": "amount of deals won (closed_at) in the period",
    "forecast": "expected revenue: open pipeline per method + new-deal history mean",
    "wape": "sum |forecast - actual| / sum actual",
    "bias": "sum (forecast - actual) / sum actual",
    "coverage_p10_p90": "share of periods with p10 <= actual <= p90 (target 0.8)",
    "model": "close model refitted at the cutoff and every refit_months after it, each with "
    "the labels known at its date; an origin is scored by the latest model fitted by then",
    "dealcast": "open pipeline from the close model's P(won by day d) curve",
}

Plan = list[tuple[Period, pd.Timestamp, str]]
#: The (kind, origin) pairs of the backtest, in the order they are shown.
HORIZONS = ("month_at_start", "quarter_at_start", "quarter_at_mid")


def empty_backtest() -> pd.DataFrame:
    """The backtest rows' frame with no row (no period to backtest)."""
    return pd.DataFrame(columns=list(COLUMNS))


def backtest_plan(data_end: pd.Timestamp, *, months: int) -> tuple[pd.Timestamp, Plan]:
    """The cutoff (the first month start at or after ``months`` months before ``data_end``)
    and the (period, origin, position) triples after it whose whole period is in the data
    (:func:`serving.forecast_backtest.backtest_periods`); no triple: nothing to backtest."""
    cutoff = (data_end - pd.DateOffset(months=months)).normalize()
    cutoff = cutoff if cutoff.day == 1 else (cutoff.replace(day=1) + pd.DateOffset(months=1))
    return cutoff, backtest_periods(cutoff, data_end)


def refit_dates(cutoff: pd.Timestamp, origins: list[pd.Timestamp], *, every_months: int) -> list:
    """The cutoff and every ``every_months`` months after it up to the last origin."""
    last, dates = max(origins, default=cutoff), [cutoff]
    while (nxt := cutoff + pd.DateOffset(months=every_months * len(dates))) <= last:
        dates.append(nxt)
    return dates


def scored_open_deals(
    data: CRMData, model, dates: pd.DatetimeIndex, *, funnel: Funnel, spec: FeatureSpec
) -> pd.DataFrame:
    """deal_id, as_of, stage, amount, p_win and (from a hazard model) its ``won_<d>d``
    curve, of every deal open at each date; with the same drift fallback as the export.
    :class:`serving.score.FeatureMismatchError` when ``model`` needs a column not built."""
    from features.build import build_features
    from models.baselines import stage_of
    from serving.score import check_feature_columns

    built = build_features(data, as_of_dates=dates, funnel=funnel, **spec.build_kwargs())
    if built.empty:
        return pd.DataFrame(columns=["deal_id", "as_of", "stage", "amount", "p_win"])
    check_feature_columns((model,), built.columns)
    amount = data.deals.set_index(data.deals["deal_id"].astype("object"))["amount"]
    ids = built["deal_id"].astype("object")
    curved = hasattr(model, "curve_checked")
    # one pass over the hazards: p_win is the curve at the horizon (an interval end)
    curve = model.curve_checked(built) if curved else None
    frame = pd.DataFrame(
        {
            "deal_id": ids.to_numpy(),
            "as_of": built["as_of"].to_numpy(),
            "stage": stage_of(built),
            "amount": pd.to_numeric(amount.reindex(ids), errors="coerce").to_numpy(float),
            "p_win": curve[f"won_{int(model.horizon_days)}d"].to_numpy()
            if curved
            else model.predict_proba(built)[:, 1],
        }
    )
    if not curved:
        return frame
    return pd.concat([frame, curve[[c for c in curve.columns if c.startswith("won_")]]], axis=1)


def forecast_backtest(
    data: CRMData,
    *,
    fit_close: Callable[[pd.Timestamp], Any],
    cutoff: pd.Timestamp,
    refit_months: int,
    plan: Plan,
    funnel: Funnel,
    spec: FeatureSpec,
    horizon_days: int,
    draws: int,
    seed: int,
    min_stage_wins: float,
    new_deal_origins: int,
    stage_prior_strength: float,
    calendar_prior_days: float,
) -> tuple[pd.DataFrame, dict]:
    """(rows, metrics) of every period of ``plan`` forecast at its origins by close models
    ``fit_close(date)`` fitted at each of :func:`refit_dates` (see the module doc); errors of
    ``fit_close`` propagate. Origin ``k`` of the plan is drawn with seed ``seed + k``;
    ``stage_prior_strength`` shrinks the stage-weighted baseline's rates; the other
    settings are those of the revenue forecast."""
    origins = sorted({origin for _, origin, _ in plan})
    refits = refit_dates(cutoff, origins, every_months=refit_months)
    scored = pd.concat(
        [
            scored_open_deals(
                data, fit_close(at), pd.DatetimeIndex(group), funnel=funnel, spec=spec
            )
            for at, group in _by_refit(origins, refits)
        ],
        ignore_index=True,
    )
    history = data.table("stage_history")
    rows = []
    for k, (period, origin, _) in enumerate(plan):
        rows += backtest_origin(
            deals=data.deals, history=history, scored=scored[scored["as_of"] == origin],
            period=period, origin=origin, horizon_days=horizon_days, won_label=funnel.won_label,
            draws=draws, seed=seed + k, min_stage_wins=min_stage_wins,
            new_deal_origins=new_deal_origins, prior_strength=stage_prior_strength,
            calendar_prior_days=calendar_prior_days,
        )  # fmt: skip
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    return frame, _summary(frame, cutoff, origins, plan) | {
        "refits": [str(at.date()) for at in refits]
    }


def _by_refit(origins: list, refits: list) -> list[tuple[pd.Timestamp, list]]:
    """(refit date, the origins it scores: from it to the next refit) for refits with any."""
    ends = [*refits[1:], pd.Timestamp.max.tz_localize("UTC")]
    groups = [
        (at, [o for o in origins if at <= o < end]) for at, end in zip(refits, ends, strict=True)
    ]
    return [(at, group) for at, group in groups if group]


def _summary(frame: pd.DataFrame, cutoff: pd.Timestamp, origins: list, plan: Plan) -> dict:
    return {
        "methods": backtest_metrics(frame),
        "cutoff": str(cutoff),
        "origins": [str(o.date()) for o in origins],
        "periods": {
            "months": int(sum(p.kind == "month" for p, _, _ in plan)),
            "quarters": int(sum(p.kind == "quarter" for p, _, at in plan if at == "start")),
        },
        "sigma_mean": float(frame["sigma"].mean()),
        "definitions": DEFINITIONS,
    }


def backtest_lines(metrics: dict) -> list[str]:
    """The backtest as text: per method the months forecast at their start (WAPE, bias,
    P10-P90 coverage), then each other (kind, origin) pair; nothing without methods."""
    methods = _ordered(metrics.get("methods", {}), METHODS)
    if not methods:
        return []
    n = next(iter(methods.values()))["periods"]
    lines = [f"backtest on {n} past months (cutoff {metrics['cutoff'][:10]}):"]
    for name, m in methods.items():
        lines.append(
            f"  {name:<16} WAPE {m['wape']:.3f}  bias {m['bias']:+.3f}  "
            f"P10-P90 coverage {m['coverage_p10_p90']:.2f}"
        )
    for name, m in methods.items():
        for key, h in _ordered(m.get("by_horizon", {}), HORIZONS).items():
            if key == "month_at_start":
                continue
            lines.append(
                f"  {name:<16} {key:<14} {h['periods']:>2} periods  WAPE {h['wape']:.3f}  "
                f"bias {h['bias']:+.3f}  P10-P90 coverage {h['coverage_p10_p90']:.2f}"
            )
    return lines


def _ordered(tree: dict, first: tuple[str, ...]) -> dict:
    """``tree`` with the keys of ``first`` first, in that order (a JSON read back is sorted)."""
    return {k: tree[k] for k in first if k in tree} | tree
