"""The ``forecast`` step: load the CRM -> score the open deals with the champion -> forecast
won revenue per month and quarter (P10/P50/P90) -> backtest on past months -> write.

Writes into ``out``: ``forecast_<DATE>.csv`` (one row per period), ``forecast_fan_<DATE>.png``,
``forecast_backtest.parquet`` (one row per past month and method) and
``forecast_backtest.json`` (metrics per method, definitions, settings). The library is
:mod:`serving.forecast` (method), :mod:`serving.forecast_simulate` and
:mod:`serving.forecast_backtest`.

Backtest: one close model with the champion's settings (``params.yaml`` ``train:``) is
trained at the cutoff, the first month start at or after ``forecast.backtest_months``
months before the data's end, with only labels known then (as ``dealcast evaluate``
does); every later month start whose whole month is in the data is a forecast origin,
with features, timing, sigma, stage rates and new-deal history as known at that origin.
The model is not retrained per origin.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from crm.schemas import Funnel
from pipelines.catalog import forecast_files
from pipelines.io import write_bytes_atomic, write_json_atomic
from pipelines.params import FeaturesParams, ForecastParams, TrainParams
from pipelines.steps import data_end_of

log = logging.getLogger(__name__)


@dataclass
class ForecastRun:
    """What ``run_forecast`` computed and wrote; ``messages`` are for the user."""

    as_of: pd.Timestamp
    forecast: pd.DataFrame
    sigma: float
    open_deals: int
    backtest: pd.DataFrame
    metrics: dict
    files: dict[str, Path] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)
    data_fingerprint: str = ""


def scored_open_deals(data, model, dates: pd.DatetimeIndex, *, funnel: Funnel, features):
    """deal_id, as_of, stage, amount, p_win and (from a hazard model) its ``won_<d>d``
    curve, of every deal open at each date; with the same drift fallback as the export."""
    from features.build import build_features
    from models.baselines import stage_of
    from serving.score import check_feature_columns

    built = build_features(
        data, as_of_dates=dates, funnel=funnel, windows_days=features.windows_days,
        trend_days=features.trend_days, recency_channels=features.recency_channels,
        prior_strength=features.prior_strength,
    )  # fmt: skip
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


def run_forecast(
    *,
    folder: Path,
    out: Path,
    funnel: Funnel,
    features: FeaturesParams,
    train: TrainParams,
    forecast: ForecastParams,
    champion,
    horizon_days: int,
    as_of: pd.Timestamp | None,
    seed: int,
) -> ForecastRun:
    """Forecast, backtest and write; raise ``StepError`` on unusable data."""
    from pipelines.modelling import load_usable
    from pipelines.modelling_artifacts import fingerprint
    from pipelines.steps import StepError
    from serving.forecast import past_wins, shared_shock_sigma
    from serving.forecast_simulate import revenue_forecast
    from serving.score import FeatureMismatchError

    data = load_usable(folder, funnel=funnel)
    data_end = data_end_of(data, data_end=features.data_end)
    when = data_end if as_of is None else as_of
    history = data.table("stage_history")
    known = data.deals[(data.deals["created_at"] <= when).to_numpy(bool)]
    try:
        scored = scored_open_deals(
            data, champion.close, pd.DatetimeIndex([when]), funnel=funnel, features=features
        )
    except FeatureMismatchError as error:
        raise StepError(str(error)) from None
    wins = past_wins(known, history, as_of=when, horizon_days=horizon_days,
                     won_label=funnel.won_label)  # fmt: skip
    if wins.empty and "p_win" in scored and not any(c.startswith("won_") for c in scored):
        raise StepError(
            f"no deal was won within {horizon_days} days of a snapshot taken at least "
            f"{horizon_days} days before {when.date()}: too little history to time the wins"
        )
    sigma = shared_shock_sigma(known, as_of=when, won_label=funnel.won_label)
    table = revenue_forecast(
        deals=known, open_deals=scored, wins=wins, as_of=when, months=forecast.months,
        quarters=forecast.quarters, horizon_days=horizon_days, won_label=funnel.won_label,
        sigma=sigma, draws=forecast.draws, seed=seed, min_stage_wins=forecast.min_stage_wins,
        new_deal_origins=forecast.new_deal_origins,
        calendar_prior_days=forecast.calendar_prior_days,
    )  # fmt: skip
    run = ForecastRun(when, table, sigma, len(scored), *_empty_backtest())
    run.data_fingerprint = fingerprint(data)
    if when < data_end:
        run.messages.append(f"forecast as of {when.date()}, before the data's end {data_end}")
    run.backtest, run.metrics = run_backtest(
        data, folder=folder, out=out, funnel=funnel, features=features, train=train,
        forecast=forecast, data_end=data_end, seed=seed, messages=run.messages,
    )  # fmt: skip
    run.files = write_forecast(run, Path(out), horizon_days=horizon_days, forecast=forecast)
    return run


def _empty_backtest():
    from serving.forecast_backtest import COLUMNS

    return pd.DataFrame(columns=list(COLUMNS)), {}


def backtest_origins(data_end: pd.Timestamp, months: int) -> tuple[pd.Timestamp, list]:
    """The cutoff and the (period, origin, position) triples after it whose whole period
    is in the data (:func:`serving.forecast_backtest.backtest_periods`)."""
    from serving.forecast_backtest import backtest_periods

    cutoff = (data_end - pd.DateOffset(months=months)).normalize()
    cutoff = cutoff if cutoff.day == 1 else (cutoff.replace(day=1) + pd.DateOffset(months=1))
    return cutoff, backtest_periods(cutoff, data_end)


def run_backtest(data, *, folder, out, funnel, features, train, forecast, data_end, seed,
                 messages: list[str]) -> tuple[pd.DataFrame, dict]:  # fmt: skip
    """Train the close model at the cutoff, forecast every later whole month and quarter;
    (rows, metrics)."""
    from pipelines.modelling import fit_close_at
    from pipelines.steps import StepError
    from serving.forecast_backtest import COLUMNS, backtest_metrics, backtest_origin

    cutoff, triples = backtest_origins(data_end, forecast.backtest_months)
    if not triples:
        messages.append("no backtest: no whole month after the backtest cutoff")
        return pd.DataFrame(columns=list(COLUMNS)), {}
    try:
        close = fit_close_at(
            data, cutoff=cutoff, funnel=funnel, features=features, train=train, seed=seed
        )
    except StepError as exc:
        messages.append(f"no backtest: {str(exc).splitlines()[0]}")
        return pd.DataFrame(columns=list(COLUMNS)), {}
    origins = sorted({origin for _, origin, _ in triples})
    scored = scored_open_deals(
        data, close, pd.DatetimeIndex(origins), funnel=funnel, features=features
    )
    history = data.table("stage_history")
    rows = []
    for k, (period, origin, _) in enumerate(triples):
        at = scored[scored["as_of"] == origin]
        rows += backtest_origin(
            deals=data.deals, history=history, scored=at, period=period, origin=origin,
            horizon_days=train.horizon_days, won_label=funnel.won_label, draws=forecast.draws,
            seed=seed + k, min_stage_wins=forecast.min_stage_wins,
            new_deal_origins=forecast.new_deal_origins,
            prior_strength=forecast.stage_prior_strength,
            calendar_prior_days=forecast.calendar_prior_days,
        )  # fmt: skip
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    metrics = {
        "methods": backtest_metrics(frame),
        "cutoff": str(cutoff),
        "origins": [str(o.date()) for o in origins],
        "periods": {
            "months": int(sum(p.kind == "month" for p, _, _ in triples)),
            "quarters": int(sum(p.kind == "quarter" for p, _, at in triples if at == "start")),
        },
        "sigma_mean": float(frame["sigma"].mean()),
        "definitions": DEFINITIONS,
    }
    return frame, metrics


DEFINITIONS = {
    "period": "calendar month forecast at its first day (00:00 UTC); calendar quarter "
    "forecast at its first day and at mid-quarter (the 15th of its middle month), revenue "
    "already won by then counted as known (metrics under by_horizon)",
    "actual": "amount of deals won (closed_at) in the period",
    "forecast": "expected revenue: open pipeline per method + new-deal history mean",
    "wape": "sum |forecast - actual| / sum actual",
    "bias": "sum (forecast - actual) / sum actual",
    "coverage_p10_p90": "share of periods with p10 <= actual <= p90 (target 0.8)",
    "model": "close model trained once at the cutoff with labels known then; not retrained",
    "dealcast": "open pipeline from the close model's P(won by day d) curve",
}


def write_forecast(run: ForecastRun, out: Path, *, horizon_days: int, forecast) -> dict:
    """CSV, fan chart, backtest parquet and JSON, each written atomically."""
    from crm.write import write_frame

    files = forecast_files(out, run.as_of)  # the catalogue's names
    table = run.forecast.assign(
        as_of=run.as_of,
        horizon_days=horizon_days,
        sigma=run.sigma,
        draws=forecast.draws,
        data_fingerprint=run.data_fingerprint,  # the report shows it only for this CRM
    )
    write_bytes_atomic(files["forecast"], table.to_csv(index=False).encode("utf-8"))
    write_bytes_atomic(files["fan_chart"], fan_chart_png(run.forecast, run.as_of))
    write_frame(run.backtest, files["backtest"])
    write_json_atomic(
        files["backtest_metrics"],
        run.metrics | {"as_of": str(run.as_of), "sigma": run.sigma,
                       "open_deals": run.open_deals, "horizon_days": horizon_days},
    )  # fmt: skip
    return files


def fan_chart_png(table: pd.DataFrame, as_of: pd.Timestamp) -> bytes:
    """Monthly P10-P90 band and P50 line over stacked expected parts (won / open / new)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    months = table[table["kind"] == "month"]
    x = np.arange(len(months))
    fig, ax = plt.subplots(figsize=(9, 4.8))
    won, opn = months["already_won"].to_numpy(), months["open_expected"].to_numpy()
    new = months["new_expected"].to_numpy()
    ax.bar(x, won, 0.55, color="#2e7d32", label="already won")
    ax.bar(x, opn, 0.55, bottom=won, color="#90caf9", label="open pipeline (expected)")
    ax.bar(x, new, 0.55, bottom=won + opn, color="#ffcc80", label="new deals (expected)")
    ax.fill_between(x, months["p10"], months["p90"], color="#1565c0", alpha=0.18,
                    label="P10-P90")  # fmt: skip
    ax.plot(x, months["p50"], color="#0d47a1", marker="o", label="P50")
    ax.set_xticks(x, months["period"])
    ax.set_xlabel("month (UTC)")
    ax.set_ylabel("won revenue (deal amount currency)")
    ax.set_title(f"Revenue forecast as of {as_of.date()}")
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


def format_forecast(run: ForecastRun) -> str:
    """What the CLI prints: the periods and the backtest per method."""
    lines = [
        f"forecast as of {run.as_of}: {run.open_deals:,} open deals, shared shock sigma "
        f"{run.sigma:.3f} (logit)",
        *run.messages,
        f"{'period':<9}{'won':>13}{'open':>13}{'new':>13}{'P10':>13}{'P50':>13}{'P90':>13}",
    ]
    for r in run.forecast.itertuples(index=False):
        lines.append(
            f"{r.period:<9}{r.already_won:>13,.0f}{r.open_expected:>13,.0f}"
            f"{r.new_expected:>13,.0f}{r.p10:>13,.0f}{r.p50:>13,.0f}{r.p90:>13,.0f}"
        )
    methods = run.metrics.get("methods", {})
    if methods:
        n = next(iter(methods.values()))["periods"]
        lines.append(f"backtest on {n} past months (cutoff {run.metrics['cutoff'][:10]}):")
        for name, m in methods.items():
            lines.append(
                f"  {name:<16} WAPE {m['wape']:.3f}  bias {m['bias']:+.3f}  "
                f"P10-P90 coverage {m['coverage_p10_p90']:.2f}"
            )
        lines += _horizon_lines(methods)
    return "\n".join(lines)


def _horizon_lines(methods: dict) -> list[str]:
    """The backtest per period kind and origin (quarter_at_start, quarter_at_mid)."""
    lines = []
    for name, m in methods.items():
        for key, h in m.get("by_horizon", {}).items():
            if key == "month_at_start":
                continue
            lines.append(
                f"  {name:<16} {key:<14} {h['periods']:>2} periods  WAPE {h['wape']:.3f}  "
                f"bias {h['bias']:+.3f}  P10-P90 coverage {h['coverage_p10_p90']:.2f}"
            )
    return lines
