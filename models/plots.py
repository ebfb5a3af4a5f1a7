"""Reliability diagram and lift chart; returning figures (made without pyplot, so no backend
is chosen at import and a notebook shows them inline), never saving."""

from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure

#: What a reader sees in a legend for each score column (code names never reach a chart).
LABELS = {
    "p_win": "dealcast (served)",
    "p_win_lightgbm": "LightGBM alone",
    "p_win_fixed_horizon": "fixed-horizon model",
    "p_win_logreg": "logistic regression",
    "p_win_stage_rate": "stage win rate",
    "p_win_base_rate": "overall win rate",
}
#: One colour per score, the same in every chart.
COLORS = {
    "p_win": "#3b6ea8",
    "p_win_lightgbm": "#6a9fd4",
    "p_win_fixed_horizon": "#8a63d2",
    "p_win_logreg": "#e08a1e",
    "p_win_stage_rate": "#8a8f98",
    "p_win_base_rate": "#c0392b",
}


def label(name: str) -> str:
    return LABELS.get(name, name.replace("_", " "))


def reliability_diagram(y: np.ndarray, scores: dict[str, np.ndarray], *, n_bins: int) -> Figure:
    """Mean predicted vs observed rate in equal-mass bins, one line per score."""
    fig = Figure(figsize=(5.5, 5))
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect")
    y = np.asarray(y, float)
    for name, p in scores.items():
        p = np.asarray(p, float)
        order = np.argsort(p, kind="stable")
        bins = np.array_split(order, min(n_bins, max(len(p), 1)))
        xs = [p[b].mean() for b in bins if len(b)]
        ys = [y[b].mean() for b in bins if len(b)]
        ax.plot(xs, ys, marker="o", label=label(name), color=COLORS.get(name))
    ax.set(
        xlabel="mean predicted probability",
        ylabel="observed rate",
        title="Reliability (equal-mass bins)",
        xlim=(0, 1),
        ylim=(0, 1),
    )
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return fig


def lift_chart(y: np.ndarray, scores: dict[str, np.ndarray], *, n_bins: int) -> Figure:
    """Positive rate of each score decile (highest first) over the overall rate."""
    fig = Figure(figsize=(6.5, 4.5))
    ax = fig.subplots()
    y = np.asarray(y, float)
    base = y.mean() if len(y) else math.nan
    width = 0.8 / max(len(scores), 1)
    for k, (name, p) in enumerate(scores.items()):
        order = np.argsort(-np.asarray(p, float), kind="stable")
        bins = np.array_split(order, min(n_bins, max(len(p), 1)))
        lifts = [y[b].mean() / base if len(b) and base else math.nan for b in bins]
        x = np.arange(1, len(lifts) + 1) + k * width - 0.4 + width / 2
        ax.bar(x, lifts, width, label=label(name), color=COLORS.get(name))
    ax.axhline(1.0, color="grey", linestyle=":")
    ax.set(xlabel="decile (1 = highest scores)", ylabel="lift", title="Lift by decile")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
