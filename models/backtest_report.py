"""What a training and its backtest report: the metric definitions, the test window's
metrics, the guard messages and the metric lines the CLI prints (text, no I/O)."""

from __future__ import annotations

import math

import pandas as pd

from models.drift import describe
from models.evaluate import (
    FittedModels,
    censoring_bias,
    close_metric_table,
    next_stage_metric_table,
)

DEFINITIONS = {
    "p_win": "P(won within horizon_days of as_of), served model (competing-risks hazards "
    "from LightGBM, cross-fitted by deal, calibrated, shrunk towards the stage hazard table, "
    "level-recalibrated on the latest weeks, floored at train.probability_floor)",
    "p_win_lightgbm": "the served model's calibrated trees alone (no blend, no level shift)",
    "p_win_fixed_horizon": "the previous close model: LightGBM on snapshots with "
    "as_of + horizon_days <= cutoff only",
    "won": "won within horizon_days of as_of; empty unless as_of + horizon_days <= data_end",
    "next_stage_true": "next state entered after as_of; empty unless known and "
    "as_of + horizon_days <= data_end",
    "ece": "equal-mass bins: rows sorted by p, np.array_split into ece_bins chunks",
    "top_decile_lift": "positive rate of the ceil(10%) highest p over the overall rate",
    "log_loss": "probabilities clipped to [1e-6, 1 - 1e-6]",
    "top2_accuracy": "true state among the two highest p_next__* (p_next_tm__* for the matrix)",
}

NO_KNOWN_OUTCOME = (
    "no test snapshot has a known outcome yet (needs as_of + horizon_days <= data_end): "
    "choose an earlier --as-of"
)


def guard_messages(models: FittedModels) -> list[str]:
    """What the user must know of the fit: the guards' decisions, drift, what was not fitted."""
    msgs = [f"close probability: {models.close.guard_['decision']}"]
    if models.close.drift_:
        msgs.append(f"left out of the close model, drifted: {describe(models.close.drift_)}")
    if models.fixed_horizon is None:
        msgs.append(
            "no snapshot's horizon-day outcome is known at the cutoff: the fixed-horizon "
            "baselines (stage-rate table, base rate, logistic regression) were not fitted"
        )
    if models.next_stage is None:
        msgs.append("next stage: no stage history with moves; no next-stage model")
    else:
        msgs.append(f"next stage: {models.next_stage.guard_['decision']}")
    return msgs


def window_summary(dates: pd.DatetimeIndex, pred: pd.DataFrame) -> dict:
    """The test window: its dates, rows, rows with known outcomes, rows scored by fallbacks."""
    return {
        "first_as_of": str(dates.min()),
        "last_as_of": str(dates.max()),
        "rows": len(pred),
        "rows_with_known_outcome": int(pred["won"].notna().sum()),
        "rows_with_known_next_stage": int(pred["next_stage_true"].notna().sum())
        if "next_stage_true" in pred
        else 0,
        "rows_scored_by_the_drift_fallback": int(pred["drift_fallback"].sum()),
        "rows_scored_by_the_drift_refit": int(pred["drift_refit"].sum())
        if "drift_refit" in pred
        else 0,
    }


def backtest_metrics(dates: pd.DatetimeIndex, pred: pd.DataFrame, *, ece_bins: int) -> dict:
    """Every metric of the test window's predictions, and how each is defined."""
    return {
        "test_window": window_summary(dates, pred),
        "close_probability": close_metric_table(pred),
        "next_stage": next_stage_metric_table(pred),
        "censoring": censoring_bias(pred),
        "definitions": DEFINITIONS | {"ece_bins": ece_bins},
    }


def no_labels_messages(metrics: dict) -> list[str]:
    """:data:`NO_KNOWN_OUTCOME` when no test row has a known outcome, else nothing."""
    return [NO_KNOWN_OUTCOME] if metrics["test_window"]["rows_with_known_outcome"] == 0 else []


def metric_lines(m: dict) -> list[str]:
    """The test window, drift fallbacks, metric tables and horizon cost, as printed."""
    w = m["test_window"]
    lines = [
        f"test: {w['rows']:,} snapshots {w['first_as_of'][:10]} .. {w['last_as_of'][:10]}, "
        f"{w['rows_with_known_outcome']:,} with a known outcome",
        *_drift_lines(w),
        f"{'close probability':<18}{'AUC':>7}{'PR AUC':>8}{'logloss':>9}{'Brier':>8}"
        f"{'ECE':>7}{'lift@10':>9}",
    ]
    for name, r in m["close_probability"]["overall"].items():
        lines.append(
            f"{name:<18}{_f(r['roc_auc']):>7}{_f(r['pr_auc']):>8}{_f(r['log_loss']):>9}"
            f"{_f(r['brier']):>8}{_f(r['ece']):>7}{_f(r['top_decile_lift'], 2):>9}"
        )
    if m.get("next_stage"):
        lines.append(f"{'next stage':<18}{'logloss':>9}{'acc':>7}{'top2':>7}")
        for name, r in m["next_stage"]["overall"].items():
            lines.append(
                f"{name:<18}{_f(r['log_loss']):>9}{_f(r['accuracy']):>7}{_f(r['top2_accuracy']):>7}"
            )
    c = m["censoring"]
    lines.append(
        f"horizon cost: {c['won_after_horizon']} of {c['eventual_wins']} eventual wins came "
        f"after the horizon (share {_f(c['share_of_positives_lost'])})"
    )
    return lines


def _drift_lines(w: dict) -> list[str]:
    lines = []
    if w.get("rows_scored_by_the_drift_fallback"):
        lines.append(
            f"drift at scoring: {w['rows_scored_by_the_drift_fallback']:,} test snapshots "
            "were scored by the stage-table fallback (features drifted at their date)"
        )
    if w.get("rows_scored_by_the_drift_refit"):
        lines.append(
            f"drift at scoring: {w['rows_scored_by_the_drift_refit']:,} test snapshots "
            "were scored by the model refitted without the features that drifted at "
            "their date"
        )
    return lines


def _f(x, digits: int = 3) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"
