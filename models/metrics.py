"""Every metric of the close-probability and next-stage models, defined so anyone can
recompute them from ``test_predictions.parquet``.

Binary: ROC AUC, PR AUC (average precision), log loss, Brier, expected calibration error
(ECE, equal-mass bins: rows sorted by p and cut into ``n_bins`` nearly equal chunks;
ECE = sum over bins of share of rows x |mean(y) - mean(p)|) and top-decile lift (rate of
positives among the ceil(10 %) highest p, over the overall rate). A metric that needs both
classes is NaN when the rows hold only one. Probabilities are clipped to [1e-6, 1 - 1e-6]
for log loss. Multiclass: log loss, accuracy, top-2 accuracy.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

EPS = 1e-6
ECE_BINS = 10


def expected_calibration_error(y: np.ndarray, p: np.ndarray, *, n_bins: int = ECE_BINS) -> float:
    """ECE with equal-mass bins (see the module docstring)."""
    y, p = np.asarray(y, float), np.asarray(p, float)
    if len(y) == 0:
        return math.nan
    order = np.argsort(p, kind="stable")
    total = 0.0
    for chunk in np.array_split(order, min(n_bins, len(y))):
        total += len(chunk) / len(y) * abs(y[chunk].mean() - p[chunk].mean())
    return float(total)


def top_decile_lift(y: np.ndarray, p: np.ndarray) -> float:
    """Positive rate among the ceil(10 %) highest-p rows over the overall positive rate."""
    y, p = np.asarray(y, float), np.asarray(p, float)
    if len(y) == 0 or y.mean() == 0:
        return math.nan
    k = math.ceil(0.1 * len(y))
    top = np.argsort(-p, kind="stable")[:k]
    return float(y[top].mean() / y.mean())


def binary_log_loss(y: np.ndarray, p: np.ndarray) -> float:
    y, p = np.asarray(y, float), np.clip(np.asarray(p, float), EPS, 1 - EPS)
    if len(y) == 0:
        return math.nan
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def binary_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """All binary metrics of probabilities ``p`` against 0/1 outcomes ``y``."""
    y, p = np.asarray(y, float), np.asarray(p, float)
    both = len(np.unique(y)) == 2
    return {
        "n": int(len(y)),
        "positive_rate": float(y.mean()) if len(y) else math.nan,
        "roc_auc": float(roc_auc_score(y, p)) if both else math.nan,
        "pr_auc": float(average_precision_score(y, p)) if both else math.nan,
        "log_loss": binary_log_loss(y, p),
        "brier": float(np.mean((p - y) ** 2)) if len(y) else math.nan,
        "ece": expected_calibration_error(y, p),
        "top_decile_lift": top_decile_lift(y, p),
    }


def calibration_scores(y: np.ndarray, p: np.ndarray, *, n_bins: int) -> dict[str, float]:
    """Log loss, ROC AUC (NaN with one class), ECE over ``n_bins`` and Brier of ``p``
    against 0/1 ``y``; all NaN when there is no row or a ``p`` is NaN (what the realised
    calibration and ``dealcast models compare`` print)."""
    y, p = np.asarray(y, float), np.asarray(p, float)
    if not len(y) or np.isnan(p).any():
        return {"log_loss": math.nan, "auc": math.nan, "ece": math.nan, "brier": math.nan}
    return {
        "log_loss": binary_log_loss(y, p),
        "auc": float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else math.nan,
        "ece": expected_calibration_error(y, p, n_bins=n_bins),
        "brier": float(np.mean((p - y) ** 2)),
    }


def multiclass_metrics(true: pd.Series, proba: pd.DataFrame) -> dict[str, float]:
    """Log loss, accuracy and top-2 accuracy of class probabilities (columns = classes).

    A true class that is not a column counts as probability 0 (clipped to ``EPS``).
    """
    true = pd.Series(true).astype("str").to_numpy()
    if len(true) == 0:
        return {"n": 0, "log_loss": math.nan, "accuracy": math.nan, "top2_accuracy": math.nan}
    classes = np.asarray(proba.columns, dtype=object)
    values = proba.to_numpy(float)
    col = pd.Index(classes).get_indexer(true)
    p_true = np.where(col >= 0, values[np.arange(len(true)), np.maximum(col, 0)], 0.0)
    ranked = np.argsort(-values, axis=1, kind="stable")
    return {
        "n": int(len(true)),
        "log_loss": float(-np.mean(np.log(np.clip(p_true, EPS, 1.0)))),
        "accuracy": float(np.mean(classes[ranked[:, 0]] == true)),
        "top2_accuracy": float(np.mean((classes[ranked[:, :2]] == true[:, None]).any(axis=1))),
    }
