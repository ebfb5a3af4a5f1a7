"""Fit the close-probability and next-stage models and their baselines at one cutoff.

The caller builds every snapshot up to the cutoff with labels at ``data_end = cutoff``
(nothing after the cutoff is known):

* the served close model (:class:`~models.hazard.HazardCloseModel`) uses **every**
  snapshot, each interval after as_of once it is fully observed at the cutoff;
* the fixed-horizon baselines (its predecessor ``p_win_fixed_horizon``, the stage-rate
  table, the base rate, logistic regression) use only snapshots with ``as_of + H <=
  cutoff``, whose ``won_within_{H}d`` label is known; a deal eventually won after more than
  H days counts as not won within H (measured by :func:`models.evaluate.censoring_bias`);
* next stage: those same snapshots whose next move happened by the cutoff; snapshots
  with no move by then (stalled deals, at least H days without a move) are dropped, which
  under-represents long stalls; :func:`next_stage_coverage` reports the share dropped.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import clone

from models.baselines import BaseRate, LogisticBaseline, StageRateTable
from models.close_probability import CloseProbabilityModel
from models.evaluate import FittedModels
from models.hazard import HazardCloseModel
from models.hazard_baselines import HazardRateTable
from models.next_stage import NextStageModel

MIN_FIXED_ROWS = 10


class TrainingError(ValueError):
    """The training rows cannot support a model (no rows, or no known labels)."""


def close_target(labels: pd.DataFrame, *, horizon_days: int) -> pd.Series:
    column = f"won_within_{horizon_days}d"
    if column not in labels:
        raise TrainingError(f"labels have no {column}; add {horizon_days} to horizons_days")
    return labels[column]


def fixed_horizon_rows(
    labels: pd.DataFrame, *, horizon_days: int, cutoff: pd.Timestamp
) -> np.ndarray:
    """Snapshots whose whole H-day label window lies before the cutoff (label known)."""
    target = close_target(labels, horizon_days=horizon_days)
    watched = (labels["as_of"] + pd.Timedelta(days=horizon_days) <= cutoff).to_numpy()
    return watched & target.notna().to_numpy()


def fit_models(
    features: pd.DataFrame,
    labels: pd.DataFrame,
    *,
    horizon_days: int,
    cutoff: pd.Timestamp,
    score_features: pd.DataFrame | None,
    close: HazardCloseModel,
    fixed_horizon: CloseProbabilityModel,
    stage_rate: StageRateTable,
    logreg: LogisticBaseline,
    next_stage: NextStageModel,
) -> FittedModels:
    """Fit every model on the rows it may learn from (the estimators are unfitted).

    ``score_features`` are the rows the models will score (the snapshot at the cutoff):
    the hazard model leaves out features that drifted between training and them. With
    fewer than ``MIN_FIXED_ROWS`` fixed-horizon rows the fixed-horizon model and logistic
    regression are not fitted and the stage table and base rate are the censoring-aware
    :class:`models.hazard_baselines.HazardRateTable`.
    """
    if not len(features):
        raise TrainingError("no training snapshot before the cutoff")
    _check_outcomes(labels, cutoff)
    fixed = fixed_horizon_rows(labels, horizon_days=horizon_days, cutoff=cutoff)
    X = features[fixed].reset_index(drop=True)
    y = close_target(labels, horizon_days=horizon_days)[fixed].to_numpy(bool)
    enough = len(y) >= MIN_FIXED_ROWS
    fitted_next = None
    if "next_stage" in labels:
        moved = fixed & labels["next_stage"].notna().to_numpy()
        if moved.sum() >= 2:
            fitted_next = next_stage.fit(
                features[moved].reset_index(drop=True), labels["next_stage"][moved].astype(str)
            )
    if enough:
        rates = stage_rate.fit(X, y), BaseRate().fit(X, y)
    else:  # too short for fixed-horizon tables: the censoring-aware ones
        rates = tuple(
            HazardRateTable(
                horizon_days=horizon_days, edges_days=close.edges_days,
                prior_strength=close.stage_prior_strength, by_stage=by_stage,
            ).fit(features, labels)
            for by_stage in (True, False)
        )  # fmt: skip
    return FittedModels(
        close=close.fit(features, labels, score_X=score_features),
        fixed_horizon=fixed_horizon.fit(X, y) if enough else None,
        stage_rate=rates[0],
        base_rate=rates[1],
        logreg=logreg.fit(X, y) if enough else None,
        next_stage=fitted_next,
    )


def _check_outcomes(labels: pd.DataFrame, cutoff: pd.Timestamp) -> None:
    """At least one deal won and one lost by the cutoff, or there is nothing to learn."""
    outcome = labels["outcome"].astype("object")
    for name in ("won", "lost"):
        if not outcome.eq(name).any():
            raise TrainingError(
                f"no training snapshot with a known outcome: no deal was {name} by the cutoff "
                f"{cutoff.date()} (at least one won and one lost deal are needed); choose a "
                "later --as-of"
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


def refit_for_drift(
    close: HazardCloseModel,
    features: pd.DataFrame,
    labels: pd.DataFrame,
    test_features: pd.DataFrame,
) -> HazardCloseModel | None:
    """``close`` refitted on the same training rows without the features that drifted at
    the test dates where ``close`` meets drift (only the test rows' features are read, never
    their outcomes: what a retrain on such a day would do), or None when none drifted."""
    mask, _ = close.drift_fallback(test_features)
    if not mask.any():
        return None
    drifted = test_features.reset_index(drop=True)[mask]
    return clone(close).fit(features, labels, score_X=drifted)
