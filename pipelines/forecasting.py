"""The ``forecast`` step: load the CRM -> score the open deals with the champion -> forecast
won revenue per month and quarter (P10/P50/P90) -> write; show the backtest ``train`` wrote.

Writes into ``out``: ``forecast_<DATE>.csv`` (one row per period) and
``forecast_fan_<DATE>.png`` (:func:`pipelines.catalog.forecast_files`). Fits nothing: the
backtest (one row per past period, origin and method, and its metrics) is computed by
``train`` (:func:`pipelines.modelling.run_forecast_backtest`) into its backtest folder;
the forecast reads it back to show it, only when it was computed on this CRM (same data
fingerprint), else says so. The library is :mod:`serving.forecast` (method),
:mod:`serving.forecast_simulate` and :mod:`serving.forecast_run`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from crm.data import CRMData
from crm.schemas import Funnel
from pipelines.catalog import forecast_files, read_forecast_backtest
from pipelines.io import write_bytes_atomic
from pipelines.params import FeaturesParams, ForecastParams
from pipelines.steps import StepError, clock_of, data_end_of, fingerprint, load_usable, spec_of
from serving.forecast import past_wins, shared_shock_sigma
from serving.forecast_run import backtest_lines, empty_backtest, scored_open_deals
from serving.forecast_simulate import revenue_forecast
from serving.score import FeatureMismatchError

log = logging.getLogger(__name__)


@dataclass
class ForecastRun:
    """What ``run_forecast`` computed and wrote; ``messages`` are for the user.

    ``backtest`` and ``metrics`` are train's forecast backtest of this CRM (empty when
    there is none, or only another CRM's: ``messages`` says so)."""

    as_of: pd.Timestamp
    forecast: pd.DataFrame
    sigma: dict[str, float]  # the shared shock sd per period kind (month, quarter)
    open_deals: int
    backtest: pd.DataFrame
    metrics: dict
    files: dict[str, Path] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)
    data_fingerprint: str = ""


def run_forecast(
    *,
    out: Path,
    backtest: Path,
    funnel: Funnel,
    features: FeaturesParams,
    forecast: ForecastParams,
    champion,
    horizon_days: int,
    as_of: pd.Timestamp | None,
    seed: int,
    folder: Path | None = None,
    data: CRMData | None = None,
    clock: pd.Timestamp | None = None,
) -> ForecastRun:
    """Forecast and write; raise ``StepError`` on unusable data. Fits nothing.

    ``data`` is the already validated CRM (the daily flow's), else the CRM of ``folder``
    is loaded (rows after its end or ``clock``, default now, left out). ``backtest`` is
    train's backtest folder (:attr:`pipelines.catalog.Catalog.backtest`)."""
    if data is None:
        data = load_usable(folder, funnel=funnel, data_end=features.data_end,
                           clock=clock or clock_of(None))  # fmt: skip
    data_end = data_end_of(data, data_end=features.data_end)
    when = data_end if as_of is None else as_of
    table, sigma, open_deals = _forecast_table(
        data, when, funnel=funnel, features=features, forecast=forecast, champion=champion,
        horizon_days=horizon_days, seed=seed,
    )  # fmt: skip
    run = ForecastRun(when, table, sigma, open_deals, *_empty_backtest())
    run.data_fingerprint = fingerprint(data)
    if when < data_end:
        run.messages.append(f"forecast as of {when.date()}, before the data's end {data_end}")
    run.backtest, run.metrics = stored_backtest(backtest, run.data_fingerprint, run.messages)
    run.files = write_forecast(run, Path(out), horizon_days=horizon_days, forecast=forecast)
    return run


def _forecast_table(data: CRMData, when: pd.Timestamp, *, funnel: Funnel, features,
                    forecast, champion, horizon_days: int, seed: int):  # fmt: skip
    """(table, sigma, open deals) of the revenue forecast as of ``when``."""

    history = data.table("stage_history")
    known = data.deals[(data.deals["created_at"] <= when).to_numpy(bool)]
    try:
        scored = scored_open_deals(data, champion.close, pd.DatetimeIndex([when]),
                                   funnel=funnel, spec=spec_of(features))  # fmt: skip
    except FeatureMismatchError as error:
        raise StepError(str(error)) from None
    wins = past_wins(known, history, as_of=when, horizon_days=horizon_days,
                     won_label=funnel.won_label)  # fmt: skip
    if wins.empty and "p_win" in scored and not any(c.startswith("won_") for c in scored):
        raise StepError(
            f"no deal was won within {horizon_days} days of a snapshot taken at least "
            f"{horizon_days} days before {when.date()}: too little history to time the wins"
        )
    sigma = {kind: shared_shock_sigma(known, as_of=when, won_label=funnel.won_label, kind=kind)
             for kind in ("month", "quarter")}  # fmt: skip
    table = revenue_forecast(
        deals=known, open_deals=scored, wins=wins, as_of=when, months=forecast.months,
        quarters=forecast.quarters, horizon_days=horizon_days, won_label=funnel.won_label,
        sigmas=sigma, draws=forecast.draws, seed=seed, min_stage_wins=forecast.min_stage_wins,
        new_deal_origins=forecast.new_deal_origins,
        calendar_prior_days=forecast.calendar_prior_days,
    )  # fmt: skip
    return table, sigma, len(scored)


def _empty_backtest() -> tuple[pd.DataFrame, dict]:
    return empty_backtest(), {}


def stored_backtest(folder: Path, ours: str, messages: list[str]) -> tuple[pd.DataFrame, dict]:
    """Train's forecast backtest in ``folder`` if it was computed on the CRM whose data
    fingerprint is ``ours``; else empty, with a message saying why (never another CRM's)."""
    try:
        stored = read_forecast_backtest(folder)
    except (OSError, ValueError) as error:  # pyarrow and json errors are ValueErrors
        messages.append(f"no backtest shown: cannot read the forecast backtest in {folder}: "
                        f"{error}; `dealcast train` rewrites it")  # fmt: skip
        return _empty_backtest()
    if stored is None:
        messages.append(f"no backtest shown: none in {folder}; `dealcast train` writes it")
        return _empty_backtest()
    rows, metrics = stored
    theirs = metrics.get("data_fingerprint")
    if theirs != ours:
        messages.append(
            f"no backtest shown: the forecast backtest in {folder} was computed on another "
            f"CRM or extract (data fingerprint {theirs}, this CRM {ours}); run "
            "`dealcast train` on this CRM"
        )
        return _empty_backtest()
    messages += [f"(train's backtest) {m}" for m in metrics.get("messages", [])]
    return rows, metrics


def write_forecast(run: ForecastRun, out: Path, *, horizon_days: int, forecast) -> dict:
    """The forecast CSV and its fan chart, each written atomically."""
    files = forecast_files(out, run.as_of)  # the catalogue's names
    table = run.forecast.assign(
        as_of=run.as_of,
        horizon_days=horizon_days,
        sigma=run.forecast["kind"].map(run.sigma),
        draws=forecast.draws,
        data_fingerprint=run.data_fingerprint,  # the report shows it only for this CRM
    )
    write_bytes_atomic(files["forecast"], table.to_csv(index=False).encode("utf-8"))
    write_bytes_atomic(files["fan_chart"], fan_chart_png(run.forecast, run.as_of))
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
    """What the CLI prints: the periods and train's backtest per method."""

    lines = [
        f"forecast as of {run.as_of}: {run.open_deals:,} open deals, shared shock sigma "
        f"{run.sigma['month']:.3f} per month, {run.sigma['quarter']:.3f} per quarter (logit)",
        *run.messages,
        f"{'period':<9}{'won':>13}{'open':>13}{'new':>13}{'P10':>13}{'P50':>13}{'P90':>13}",
    ]
    for r in run.forecast.itertuples(index=False):
        lines.append(
            f"{r.period:<9}{r.already_won:>13,.0f}{r.open_expected:>13,.0f}"
            f"{r.new_expected:>13,.0f}{r.p10:>13,.0f}{r.p50:>13,.0f}{r.p90:>13,.0f}"
        )
    return "\n".join(lines + backtest_lines(run.metrics))
