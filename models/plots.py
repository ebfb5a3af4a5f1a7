"""Reliability diagram and lift chart (matplotlib Agg); returning figures, never saving."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


def reliability_diagram(y: np.ndarray, scores: dict[str, np.ndarray], *, n_bins: int) -> Figure:
    """Mean predicted vs observed rate in equal-mass bins, one line per score."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect")
    y = np.asarray(y, float)
    for name, p in scores.items():
        p = np.asarray(p, float)
        order = np.argsort(p, kind="stable")
        bins = np.array_split(order, min(n_bins, max(len(p), 1)))
        xs = [p[b].mean() for b in bins if len(b)]
        ys = [y[b].mean() for b in bins if len(b)]
        ax.plot(xs, ys, marker="o", label=name)
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
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    y = np.asarray(y, float)
    base = y.mean() if len(y) else math.nan
    width = 0.8 / max(len(scores), 1)
    for k, (name, p) in enumerate(scores.items()):
        order = np.argsort(-np.asarray(p, float), kind="stable")
        bins = np.array_split(order, min(n_bins, max(len(p), 1)))
        lifts = [y[b].mean() / base if len(b) and base else math.nan for b in bins]
        ax.bar(np.arange(1, len(lifts) + 1) + k * width - 0.4 + width / 2, lifts, width, label=name)
    ax.axhline(1.0, color="grey", linestyle=":")
    ax.set(xlabel="decile (1 = highest scores)", ylabel="lift", title="Lift by decile")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
