"""The small-data guard: serve a model only where it beats its baseline beyond noise.

On the calibration slice each candidate blend ``w * model + (1 - w) * baseline`` has a
per-row log loss. The best blend is kept only if its mean gain over the baseline (w = 0)
is at least ``z`` cluster-robust standard errors, clustered by deal (the snapshots of one
deal are not independent). Otherwise the baseline is served: "too little signal".
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd


def gain_z(baseline_loss: np.ndarray, model_loss: np.ndarray, groups: np.ndarray) -> float:
    """Mean per-row loss gain of the model over the baseline, in cluster-robust SEs."""
    diff = np.asarray(baseline_loss, float) - np.asarray(model_loss, float)
    n = len(diff)
    if n < 2:
        return 0.0
    residual = pd.Series(diff - diff.mean()).groupby(np.asarray(groups)).sum().to_numpy()
    g = len(residual)
    if g < 2:
        return 0.0
    se = math.sqrt(g / (g - 1) * float(np.sum(residual**2))) / n
    if se == 0:
        return math.inf if diff.mean() > 0 else 0.0
    return float(diff.mean() / se)


def choose_weight(
    row_losses: dict[float, np.ndarray], groups: np.ndarray, *, z: float
) -> tuple[float, float]:
    """(weight, z of its gain): the lowest-loss weight, or 0 when its gain is not at least
    ``z`` standard errors. ``row_losses`` must hold weight 0.0 (the baseline)."""
    means = {w: float(np.mean(loss)) for w, loss in row_losses.items()}
    best = min(means, key=lambda w: (means[w], w))
    if best == 0.0:
        return 0.0, 0.0
    score = gain_z(row_losses[0.0], row_losses[best], groups)
    return (best, score) if score >= z else (0.0, score)


def binary_row_loss(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, float), 1e-6, 1 - 1e-6)
    y = np.asarray(y, float)
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))
