"""The revenue forecast of one moment, its fan chart and the text the CLI prints.

:func:`forecast_at` scores every deal open at that moment with the close model
(:func:`serving.forecast_run.scored_open_deals`), times wins from the past
(:func:`serving.forecast.past_wins`), sizes the shared shock per period kind
(:func:`serving.forecast.shared_shock_sigma`) and sums already won, open and new revenue
per period (:func:`serving.forecast_simulate.revenue_forecast_by`), also per group of
each grouping asked for (:mod:`serving.forecast_groups`). Fits nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from crm.data import CRMData
from crm.schemas import Funnel
from features.spec import FeatureSpec
from serving.forecast import past_wins, shared_shock_sigma
from serving.forecast_groups import Grouping
from serving.forecast_run import backtest_lines, scored_open_deals
from serving.forecast_simulate import revenue_forecast_by


class NoWinHistoryError(ValueError):
    """Too little history to time the wins of a model without a win curve."""


def forecast_at(
    data: CRMData,
    when: pd.Timestamp,
    *,
    close,
    funnel: Funnel,
    spec: FeatureSpec,
    horizon_days: int,
    months: int,
    quarters: int,
    draws: int,
    seed: int,
    min_stage_wins: float,
    new_deal_origins: int,
    calendar_prior_days: float,
    groupings: Sequence[Grouping] = (),
) -> tuple[pd.DataFrame, dict[str, float], int, dict[str, pd.DataFrame]]:
    """(forecast table, shared shock sigma per period kind, open deals, the table of each
    grouping by its ``by``, from the same draws) as of ``when``.

    Raises :class:`serving.score.FeatureMismatchError` when ``close`` needs a feature the
    spec does not build, :class:`NoWinHistoryError` when a model without a win curve
    meets a history with no win to time."""
    known = data.deals[(data.deals["created_at"] <= when).to_numpy(bool)]
    scored = scored_open_deals(data, close, pd.DatetimeIndex([when]), funnel=funnel, spec=spec)
    wins = past_wins(known, data.table("stage_history"), as_of=when, horizon_days=horizon_days,
                     won_label=funnel.won_label)  # fmt: skip
    if wins.empty and "p_win" in scored and not any(c.startswith("won_") for c in scored):
        raise NoWinHistoryError(
            f"no deal was won within {horizon_days} days of a snapshot taken at least "
            f"{horizon_days} days before {when.date()}: too little history to time the wins"
        )
    sigma = {kind: shared_shock_sigma(known, as_of=when, won_label=funnel.won_label, kind=kind)
             for kind in ("month", "quarter")}  # fmt: skip
    table, by = revenue_forecast_by(
        deals=known, open_deals=scored, wins=wins, as_of=when, months=months, quarters=quarters,
        horizon_days=horizon_days, won_label=funnel.won_label, sigmas=sigma, draws=draws,
        seed=seed, min_stage_wins=min_stage_wins, new_deal_origins=new_deal_origins,
        calendar_prior_days=calendar_prior_days, groupings=groupings,
    )  # fmt: skip
    return table, sigma, len(scored), by


def fan_chart_png(table: pd.DataFrame, as_of: pd.Timestamp) -> bytes:
    """Per month: stacked expected parts (already won / open pipeline / new deals) and the
    P50 with its P10-P90 range as an error bar (no translucent band over the bars, so every
    colour is in the legend, which sits below the chart where it hides nothing)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    from serving.report_charts import COLORS, png

    months = table[table["kind"] == "month"]
    x = np.arange(len(months))
    fig = Figure(figsize=(9, 5.2))
    ax = fig.subplots()
    won, opn = months["already_won"].to_numpy(), months["open_expected"].to_numpy()
    new = months["new_expected"].to_numpy()
    ax.bar(x, won, 0.55, color=COLORS["won"], label="already won")
    ax.bar(x, opn, 0.55, bottom=won, color="#9dbbe0", label="open pipeline (expected)")
    ax.bar(x, new, 0.55, bottom=won + opn, color="#f2c185", label="new deals (expected)")
    p50 = months["p50"].to_numpy(float)
    spread = [p50 - months["p10"].to_numpy(float), months["p90"].to_numpy(float) - p50]
    ax.errorbar(x, p50, yerr=spread, fmt="o", color="#1f2430", capsize=6, lw=1.4,
                label="P50, and P10 to P90")  # fmt: skip
    ax.set_xticks(x, months["period"])
    ax.set_xlabel("month (UTC)")
    ax.set_ylabel("won revenue (deal currency)")
    ax.set_title(f"Revenue forecast as of {as_of.date()}")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=4, fontsize=8,
              frameon=False)  # fmt: skip
    fig.tight_layout()
    return png(fig, dpi=110)


def forecast_text(
    table: pd.DataFrame, *, as_of: pd.Timestamp, open_deals: int, sigma: dict[str, float],
    messages: list[str], metrics: dict,
) -> str:  # fmt: skip
    """The periods, then the backtest per method (``metrics``; empty: none shown)."""
    lines = [
        f"forecast as of {as_of}: {open_deals:,} open deals, shared shock sigma "
        f"{sigma['month']:.3f} per month, {sigma['quarter']:.3f} per quarter (logit)",
        *messages,
        f"{'period':<9}{'won':>13}{'open':>13}{'new':>13}{'P10':>13}{'P50':>13}{'P90':>13}",
    ]
    for r in table.itertuples(index=False):
        lines.append(
            f"{r.period:<9}{r.already_won:>13,.0f}{r.open_expected:>13,.0f}"
            f"{r.new_expected:>13,.0f}{r.p10:>13,.0f}{r.p50:>13,.0f}{r.p90:>13,.0f}"
        )
    return "\n".join(lines + backtest_lines(metrics))
