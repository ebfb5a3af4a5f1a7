"""The backtest frame (one row per test snapshot) and its metric tables.

Every metric in :func:`metric_tables` is computed from the prediction frame alone, so
anyone can recompute it from ``test_predictions.parquet``. Rows whose label the data
cannot know yet keep an empty ``won`` / ``next_stage_true`` and are left out of the
metrics of that target.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.baselines import BaseRate, LogisticBaseline, StageRateTable, stage_of
from models.close_probability import CloseProbabilityModel
from models.metrics import binary_metrics, multiclass_metrics
from models.next_stage import NextStageModel, consistent_with_close

CLOSE_MODELS = (
    "p_win",
    "p_win_lightgbm",
    "p_win_fixed_horizon",
    "p_win_stage_rate",
    "p_win_base_rate",
    "p_win_logreg",
)
NEXT_PREFIX = "p_next__"
MATRIX_PREFIX = "p_next_tm__"


@dataclass(frozen=True)
class FittedModels:
    """Everything trained at one cutoff: the two served models and the baselines.

    ``close`` is a :class:`~models.hazard.HazardCloseModel`. The fixed-horizon baselines are
    None when no snapshot's H-day label was known at the cutoff (a history shorter than H).
    ``close_refit`` (backtests only) is ``close`` refitted on the same rows without the
    features that drifted at the test dates (:func:`models.train.refit_for_drift`): it
    scores those dates, as a retrain on that day would have.
    """

    close: object
    fixed_horizon: CloseProbabilityModel | None
    stage_rate: StageRateTable | None
    base_rate: BaseRate | None
    logreg: LogisticBaseline | None
    next_stage: NextStageModel | None
    close_refit: object | None = None


def prediction_frame(
    features: pd.DataFrame,
    labels: pd.DataFrame,
    models: FittedModels,
    *,
    horizon_days: int,
    data_end: pd.Timestamp,
) -> pd.DataFrame:
    """Scores of the model and every baseline, next to what happened.

    ``won`` and ``next_stage_true`` are kept only for snapshots whose whole horizon lies
    before ``data_end`` (``as_of + H <= data_end``), the same rule as in training: for
    later snapshots only the fast closers have a known label, and scoring on them alone
    would bias every metric towards quick wins and losses.
    """
    close = models.close
    watched = (labels["as_of"] + pd.Timedelta(days=horizon_days) <= data_end).to_numpy()
    won = labels[f"won_within_{horizon_days}d"].astype("boolean").where(watched)
    p_win, fallbacks, refit = _served(models, features)
    out = pd.DataFrame(
        {
            "deal_id": features["deal_id"].to_numpy(),
            "as_of": features["as_of"].to_numpy(),
            "stage": stage_of(features).astype(str),
            "p_win": p_win,
            "won": won.to_numpy(),
            "won_eventually": labels["outcome"]
            .eq("won")
            .astype("boolean")
            .where(labels["outcome"].notna())
            .to_numpy(),
            "p_win_lightgbm": close.predict_lightgbm(features),
            "p_win_fixed_horizon": _p(models.fixed_horizon, features),
            "p_win_stage_rate": _p(models.stage_rate, features),
            "p_win_base_rate": _p(models.base_rate, features),
            "p_win_logreg": _p(models.logreg, features),
        }
    )
    out["stage"] = out["stage"].astype("str")
    out["drift_fallback"] = out["as_of"].astype(str).isin([str(e["as_of"]) for e in fallbacks])
    out["drift_refit"] = refit
    if models.next_stage is not None and "next_stage" in labels:
        nxt = labels["next_stage"].astype("object").where(watched)
        next_cols = _next_stage_columns(features, nxt, models.next_stage, p_win)
        out = pd.concat([out, next_cols], axis=1)
    return out


def _served(models: FittedModels, features: pd.DataFrame):
    """(p_win, drift-fallback dates, rows scored by the drift refit): rows of dates where
    the close model met drift get the refit's score when there is one (its own drift
    check still applies), the stage-table fallback otherwise."""
    features = features.reset_index(drop=True)
    p_win, fallbacks = models.close.predict_checked(features)
    refit = np.zeros(len(features), bool)
    if models.close_refit is not None and fallbacks:
        dates = {str(e["as_of"]) for e in fallbacks}
        refit = features["as_of"].astype(str).isin(dates).to_numpy()
        p_win[refit], still = models.close_refit.predict_checked(features[refit])
        fallbacks = still
    return p_win, fallbacks, refit


def _p(model, features: pd.DataFrame) -> np.ndarray:
    """P(positive) of a fitted baseline, NaN for every row when it could not be fitted."""
    if model is None:
        return np.full(len(features), np.nan)
    return model.predict_proba(features)[:, 1]


def _next_stage_columns(
    features, true: pd.Series, model: NextStageModel, p_win: np.ndarray
) -> pd.DataFrame:
    proba = consistent_with_close(model.predict_proba(features).reset_index(drop=True), p_win)
    matrix = model.predict_matrix_baseline(features).reset_index(drop=True)
    true = true.reset_index(drop=True)
    classes = list(proba.columns)

    def p_of_true(p: pd.DataFrame) -> np.ndarray:
        col = pd.Index(classes).get_indexer(true.fillna("\0"))
        picked = p.to_numpy()[np.arange(len(p)), np.maximum(col, 0)]
        return np.where(col >= 0, picked, np.nan)

    cols = {
        "next_stage_pred": pd.array(proba.idxmax(axis=1), dtype="str"),
        "next_stage_true": pd.array(true.where(true.notna(), None), dtype="str"),
        "p_next_stage": p_of_true(proba),
        "p_next_stage_transition_matrix": p_of_true(matrix),
        "next_stage_pred_transition_matrix": pd.array(matrix.idxmax(axis=1), dtype="str"),
    }
    cols |= {f"{NEXT_PREFIX}{c}": proba[c].to_numpy() for c in classes}
    cols |= {f"{MATRIX_PREFIX}{c}": matrix[c].to_numpy() for c in classes}
    return pd.DataFrame(cols)


def close_metric_table(pred: pd.DataFrame) -> dict:
    """Binary metrics of every close-probability column, overall and by stage."""
    known = pred[pred["won"].notna()]
    y = known["won"].astype(bool).to_numpy()
    cols = [c for c in CLOSE_MODELS if c in known and known[c].notna().all()]

    def table(mask: np.ndarray) -> dict:
        return {c: binary_metrics(y[mask], known[c].to_numpy(float)[mask]) for c in cols}

    stages = known["stage"].to_numpy()
    return {
        "overall": table(np.ones(len(known), bool)),
        "by_stage": {s: table(stages == s) for s in sorted(set(stages))},
    }


def next_stage_metric_table(pred: pd.DataFrame) -> dict:
    """Multiclass metrics of the model and the transition matrix, overall and by stage."""
    if "next_stage_true" not in pred:
        return {}
    known = pred[pred["next_stage_true"].notna()]
    frames = {
        "next_stage_model": _proba(known, NEXT_PREFIX),
        "transition_matrix": _proba(known, MATRIX_PREFIX),
    }

    def table(mask: np.ndarray) -> dict:
        truth = known["next_stage_true"][mask]
        return {name: multiclass_metrics(truth, p[mask]) for name, p in frames.items()}

    stages = known["stage"].to_numpy()
    return {
        "overall": table(np.ones(len(known), bool)),
        "by_stage": {s: table(stages == s) for s in sorted(set(stages))},
    }


def _proba(frame: pd.DataFrame, prefix: str) -> pd.DataFrame:
    cols = [c for c in frame.columns if c.startswith(prefix)]
    return frame[cols].rename(columns=lambda c: c[len(prefix) :]).reset_index(drop=True)


def censoring_bias(pred: pd.DataFrame) -> dict:
    """How much the horizon costs: among test rows whose deal is known to be won
    eventually, the share not won within the horizon (counted as not-won by the target)."""
    won_eventually = pred["won_eventually"].astype("boolean")
    eventual = pred[won_eventually.fillna(False).to_numpy(bool) & pred["won"].notna().to_numpy()]
    n = len(eventual)
    late = int((~eventual["won"].astype(bool)).sum()) if n else 0
    return {
        "eventual_wins": n,
        "won_after_horizon": late,
        "share_of_positives_lost": late / n if n else float("nan"),
    }
