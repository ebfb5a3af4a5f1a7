"""The funnel report's charts: matplotlib (Agg) figures rendered to PNG bytes.

Every chart has a title, labelled axes and units; :func:`png` turns a figure into bytes
and closes it, so a long report does not keep figures alive.
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from models.plots import lift_chart, reliability_diagram  # noqa: E402

#: Prediction columns drawn against the outcome, the served model first.
SCORES = ("p_win", "p_win_stage_rate", "p_win_logreg", "p_win_base_rate")


def png(fig: Figure, *, dpi: int = 100) -> bytes:
    """The figure as PNG bytes (no timestamp metadata); the figure is closed."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


def funnel_chart(stages: pd.DataFrame) -> Figure:
    """Deals that reached each stage (horizontal bars, first stage on top)."""
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(stages) + 1.5))
    y = np.arange(len(stages))[::-1]
    reached = stages["reached"].to_numpy(float)
    ax.barh(y, reached, color="#3b6ea8")
    top = reached.max() if len(reached) else 1.0
    for yi, n, conv in zip(y, reached, stages["conversion_to_next"], strict=True):
        note = f"{n:,.0f}" + ("" if pd.isna(conv) else f"  → {100 * conv:.0f}% go on")
        ax.text(n + top * 0.01, yi, note, va="center", fontsize=9)
    ax.set_yticks(y, stages["stage"])
    ax.set_xlim(0, top * 1.3 or 1)
    ax.set(xlabel="deals that reached the stage or a later one (count)", title="Funnel")
    fig.tight_layout()
    return fig


def stay_chart(times: pd.DataFrame) -> Figure:
    """Median, p75 and p90 days in each stage (finished stays), grouped bars."""
    fig, ax = plt.subplots(figsize=(8, 4))
    x = np.arange(len(times))
    for k, (col, label) in enumerate(
        [("median_days", "median"), ("p75_days", "p75"), ("p90_days", "p90")]
    ):
        ax.bar(x + (k - 1) * 0.27, times[col].to_numpy(float), 0.27, label=label)
    ax.set_xticks(x, times["stage"])
    ax.set(ylabel="days in stage", xlabel="stage", title="Time in stage (finished stays)")
    ax.legend(fontsize=8)
    fig.tight_layout()
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


def forecast_backtest_chart(backtest: pd.DataFrame) -> Figure:
    """Per method: the P10-P90 band and P50 of each past period, with what really closed."""
    fig, ax = plt.subplots(figsize=(9, 4.2))
    periods = sorted(set(backtest["period"].astype(str)))
    x = {p: i for i, p in enumerate(periods)}
    for k, (method, rows) in enumerate(backtest.groupby("method", sort=False)):
        xs = rows["period"].astype(str).map(x).to_numpy()
        order = np.argsort(xs)
        ax.fill_between(
            xs[order], rows["p10"].to_numpy(float)[order], rows["p90"].to_numpy(float)[order],
            alpha=0.18, color=f"C{k}",
        )  # fmt: skip
        ax.plot(
            xs[order],
            rows["p50"].to_numpy(float)[order],
            marker=".",
            label=f"{method} P50",
            color=f"C{k}",
        )
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
