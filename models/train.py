"""Fit the close-probability and next-stage models and their baselines at one cutoff.

The caller builds the training snapshots with :mod:`models.splits` (``as_of + H <= cutoff``)
and their labels with ``data_end = cutoff``, so every label here is known at the cutoff.

* close probability: target ``won_within_{H}d``; a deal eventually won after more than H
  days counts as not won within H (measured on the backtest by
  :func:`models.evaluate.censoring_bias`);
* next stage: the training snapshots whose next move happened by the cutoff; snapshots
  with no move by then (stalled deals, at least H days without a move) are dropped, which
  under-represents long stalls; :func:`next_stage_coverage` reports the share dropped.
"""

from __future__ import annotations

import pandas as pd

from models.baselines import BaseRate, LogisticBaseline
from models.close_probability import CloseProbabilityModel
from models.evaluate import FittedModels
from models.next_stage import NextStageModel


class TrainingError(ValueError):
    """The training rows cannot support a model (no rows, or no known labels)."""


def close_target(labels: pd.DataFrame, *, horizon_days: int) -> pd.Series:
    column = f"won_within_{horizon_days}d"
    if column not in labels:
        raise TrainingError(f"labels have no {column}; add {horizon_days} to horizons_days")
    return labels[column]


def fit_models(
    features: pd.DataFrame,
    labels: pd.DataFrame,
    *,
    horizon_days: int,
    close: CloseProbabilityModel,
    logreg: LogisticBaseline,
    next_stage: NextStageModel,
) -> FittedModels:
    """Fit every model on the rows whose label is known (the estimators are unfitted)."""
    target = close_target(labels, horizon_days=horizon_days)
    known = target.notna().to_numpy()
    if not known.any():
        raise TrainingError("no training snapshot has a known label at the cutoff")
    X, y = features[known].reset_index(drop=True), target[known].to_numpy(bool)
    fitted_next = None
    if "next_stage" in labels:
        moved = labels["next_stage"].notna().to_numpy()
        if moved.sum() >= 2:
            fitted_next = next_stage.fit(
                features[moved].reset_index(drop=True), labels["next_stage"][moved].astype(str)
            )
    return FittedModels(
        close=close.fit(X, y),
        base_rate=BaseRate().fit(X, y),
        logreg=logreg.fit(X, y),
        next_stage=fitted_next,
    )


def next_stage_coverage(labels: pd.DataFrame) -> dict:
    """Share of training snapshots with a known next move (the rest are dropped)."""
    if "next_stage" not in labels or not len(labels):
        return {"rows": len(labels), "with_move": 0, "share_dropped": float("nan")}
    moved = int(labels["next_stage"].notna().sum())
    return {
        "rows": len(labels),
        "with_move": moved,
        "share_dropped": float(1 - moved / len(labels)),
    }
