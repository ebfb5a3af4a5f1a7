"""The funnel report's charts: matplotlib figures rendered to PNG bytes.

Every chart has a title, labelled axes and units. Figures are made without pyplot, so
importing this module never chooses a backend: a notebook shows them inline, a server
thread renders them with :func:`png` (Agg), and nothing keeps them alive afterwards.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from models.plots import lift_chart, reliability_diagram

#: Prediction columns drawn against the outcome, the served model first.
SCORES = ("p_win", "p_win_stage_rate", "p_win_logreg", "p_win_base_rate")


def png(fig: Figure, *, dpi: int = 100) -> bytes:
    """The figure as PNG bytes (no timestamp metadata)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    return buffer.getvalue()


#: One palette for the funnel's curves: won, lost, went on, lost from the stage, reference.
COLORS = {"won": "#2e8b57", "lost": "#c0392b", "to_next": "#3b6ea8",
          "lost_here": "#e08a1e", "previous": "#8a8f98"}  # fmt: skip
#: Curves are drawn up to this many days: deals close within months, the rest is flat.
MAX_DAYS_SHOWN = 365
CURVE_LABELS = {"won": "won", "lost": "lost", "to_next": "went to a later stage",
                "lost_here": "lost from this stage"}  # fmt: skip


def funnel_chart(stages: pd.DataFrame) -> Figure:
    """Deals that entered each stage (horizontal bars, first stage on top), annotated with
    the censoring-aware share that went on."""
    fig = Figure(figsize=(8, 0.5 * len(stages) + 1.5))
    ax = fig.subplots()
    y = np.arange(len(stages))[::-1]
    entered = stages["entered"].to_numpy(float)
    ax.barh(y, entered, color=COLORS["to_next"])
    top = entered.max() if len(entered) else 1.0
    for yi, n, conv in zip(y, entered, stages["to_next"], strict=True):
        note = f"{n:,.0f}" + ("" if pd.isna(conv) else f"  → {100 * conv:.0f}% go on")
        ax.text(n + top * 0.01, yi, note, va="center", fontsize=9)
    ax.set_yticks(y, stages["stage"])
    ax.set_xlim(0, top * 1.35 or 1)
    ax.set(
        xlabel="deals that entered the stage (count)",
        title="Funnel: deals entering each stage, share going on (open deals censored)",
    )
    fig.tight_layout()
    return fig


def stay_chart(times: pd.DataFrame) -> Figure:
    """Kaplan–Meier median, p75 and p90 days in each stage (running stays included)."""
    fig = Figure(figsize=(8, 4))
    ax = fig.subplots()
    x = np.arange(len(times))
    shades = ("#3b6ea8", "#7b9fcb", "#b9cbe3")
    for k, (col, label) in enumerate(
        [("median_days", "median"), ("p75_days", "p75"), ("p90_days", "p90")]
    ):
        ax.bar(x + (k - 1) * 0.27, times[col].to_numpy(float), 0.27, label=label,
               color=shades[k])  # fmt: skip
    ax.set_xticks(x, times["stage"])
    ax.set(ylabel="days in stage", xlabel="stage",
           title="Time in stage (Kaplan–Meier: running stays included)")  # fmt: skip
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def incidence_chart(curves: pd.DataFrame, stages: list[str]) -> Figure:
    """Small multiples, one panel per stage: cumulative incidence over days since first
    entering it of won, lost, going on and lost from the stage, with 90 % bands."""
    cols = min(3, max(1, len(stages)))
    rows = int(np.ceil(len(stages) / cols))
    fig = Figure(figsize=(10, 2.9 * rows + 0.6))
    axes = fig.subplots(rows, cols, sharey=True, squeeze=False)
    for ax, stage in zip(axes.flat, stages, strict=False):
        for measure, label in CURVE_LABELS.items():
            c = curves[(curves["stage"] == stage) & (curves["measure"] == measure)]
            if c.empty:
                continue
            style = "--" if measure in ("to_next", "lost_here") else "-"
            ax.step(c["days"], c["value"], where="post", color=COLORS[measure], ls=style,
                    lw=1.6, label=label)  # fmt: skip
            ax.fill_between(c["days"], c["lower"], c["upper"], step="post", alpha=0.15,
                            color=COLORS[measure], lw=0)  # fmt: skip
        ax.set_title(stage, fontsize=10)
        ax.set_xlim(0, min(MAX_DAYS_SHOWN, max(curves["days"].max(), 1)))
        ax.set_xlabel("days since entering the stage", fontsize=8)
        ax.set_ylim(0, 1)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{100 * v:.0f}%"))
        ax.tick_params(labelsize=8)
    return _finish_panels(fig, axes, len(stages), ylabel="share of deals (cumulative)", ncol=4,
                          top=0.94)  # fmt: skip


def cohort_chart(curves: pd.DataFrame, table: pd.DataFrame) -> Figure:
    """Small multiples, one panel per creation cohort (``table`` order): its cumulative win
    incidence since creation with the 90 % band, against the pooled previous cohorts;
    panels of cohorts flagged below the previous ones are titled in the loss colour."""
    n = len(table)
    cols = min(4, max(1, n))
    rows = int(np.ceil(n / cols))
    fig = Figure(figsize=(10, 2.4 * rows + 0.6))
    axes = fig.subplots(rows, cols, sharex=True, sharey=True, squeeze=False)
    for ax, r in zip(axes.flat, table.itertuples(index=False), strict=False):
        c = curves[curves["cohort"] == r.cohort]
        ax.plot(c["days"], c["previous"], color=COLORS["previous"], lw=1.2, ls=":",
                label="previous cohorts")  # fmt: skip
        ax.step(c["days"], c["value"], where="post", color=COLORS["won"], lw=1.6,
                label="this cohort")  # fmt: skip
        ax.fill_between(c["days"], c["lower"], c["upper"], step="post", alpha=0.18,
                        color=COLORS["won"], lw=0)  # fmt: skip
        flagged = r.below_previous is True
        ax.set_title(f"{r.cohort}" + ("  ▼ below previous" if flagged else ""), fontsize=9,
                     color=COLORS["lost"] if flagged else "black")  # fmt: skip
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{100 * v:.0f}%"))
        ax.tick_params(labelsize=8)
    axes[0, 0].set_xlim(0, min(MAX_DAYS_SHOWN, max(curves["days"].max(), 1)))
    for ax in axes[-1, :]:
        ax.set_xlabel("days since creation", fontsize=8)
    return _finish_panels(fig, axes, n, ylabel="won (cumulative)", ncol=2, top=0.95)


def _finish_panels(fig: Figure, axes, used: int, *, ylabel: str, ncol: int, top: float) -> Figure:
    """Small multiples finished alike: panels after the ``used`` ones hidden, the first
    column's y label, one legend (from the first panel) across the top."""
    for ax in list(axes.flat)[used:]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel(ylabel, fontsize=8)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=ncol, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, top))
    return fig


def quality_charts(pred: pd.DataFrame, *, n_bins: int) -> dict[str, Figure]:
    """Reliability diagram and lift chart of the model and baselines on known outcomes."""
    known = pred[pred["won"].notna()]
    y = known["won"].astype(bool).to_numpy()
    scores = {c: known[c].to_numpy(float) for c in SCORES if c in known and known[c].notna().all()}
    return {
        "reliability": reliability_diagram(y, scores, n_bins=n_bins),
        "lift": lift_chart(y, scores, n_bins=10),
    }


#: Forecast methods as a reader knows them, each with its colour in every chart.
METHODS = {
    "dealcast": ("dealcast", "#3b6ea8"),
    "stage_weighted": ("stage-weighted (amount × stage rate)", "#8a8f98"),
}


def forecast_backtest_chart(backtest: pd.DataFrame) -> Figure:
    """Per method: the P10-P90 band and P50 of each past period, with what really closed."""
    fig = Figure(figsize=(9, 4.2))
    ax = fig.subplots()
    periods = sorted(set(backtest["period"].astype(str)))
    x = {p: i for i, p in enumerate(periods)}
    for k, (method, rows) in enumerate(backtest.groupby("method", sort=False)):
        xs = rows["period"].astype(str).map(x).to_numpy()
        order = np.argsort(xs)
        name, color = METHODS.get(str(method), (str(method), f"C{k}"))
        ax.fill_between(
            xs[order], rows["p10"].to_numpy(float)[order], rows["p90"].to_numpy(float)[order],
            alpha=0.18, color=color, label=f"{name}: P10–P90",
        )  # fmt: skip
        ax.plot(xs[order], rows["p50"].to_numpy(float)[order], marker=".", color=color,
                label=f"{name}: P50")  # fmt: skip
    actual = backtest.assign(period=backtest["period"].astype(str)).drop_duplicates("period")
    actual = actual[actual["actual"].notna()]
    ax.plot(actual["period"].map(x), actual["actual"].to_numpy(float), "ko-", label="actual")
    step = max(1, len(periods) // 12)
    ax.set_xticks(range(0, len(periods), step), periods[::step], rotation=30, ha="right")
    ax.set(xlabel="period", ylabel="won revenue (deal currency)",
           title="Forecast backtest: P10-P90 band, P50 and actual")  # fmt: skip
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
