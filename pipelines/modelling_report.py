"""What the ``train`` and ``evaluate`` steps report: the run summary, the metric
definitions, guard messages and the text the CLI prints (:func:`format_run`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from crm.data import CRMData


@dataclass(frozen=True)
class Prepared:
    """The CRM, its cutoff and the training snapshots with labels known at the cutoff."""

    data: CRMData
    data_end: pd.Timestamp
    cutoff: pd.Timestamp
    dates: pd.DatetimeIndex
    split: object
    train: object
    fingerprint: str
    score_features: pd.DataFrame | None = None


@dataclass
class ModellingRun:
    """What a step trained, measured and wrote; ``messages`` are for the user."""

    prepared: Prepared
    models: object
    summary: dict
    files: dict[str, Path] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)
    predictions: pd.DataFrame | None = None
    test_features: pd.DataFrame | None = None
    metrics: dict | None = None
    forecast_backtest: ForecastBacktest | None = None


@dataclass
class ForecastBacktest:
    """The revenue forecast's backtest that ``train`` ran (:mod:`serving.forecast_run`):
    one row per (period, origin, method) and the metrics; ``metrics`` records the data
    fingerprint and data end it was computed on, and ``messages`` why it is empty."""

    rows: pd.DataFrame
    metrics: dict
    messages: list[str] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """What the CLI prints: why there is no backtest, or its metrics per method."""
        from serving.forecast_run import backtest_lines

        return [*self.messages, *backtest_lines(self.metrics)]


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


def run_summary(prepared: Prepared, models, horizon_days: int) -> dict:
    close, nxt, fixed = models.close, models.next_stage, models.fixed_horizon
    as_of = prepared.train.features["as_of"]
    return {
        "cutoff": str(prepared.cutoff),
        "data_end": str(prepared.data_end),
        "horizon_days": horizon_days,
        "data_fingerprint": prepared.fingerprint,
        "training": close.training_ | {
            "rows": len(prepared.train.features),
            "dates": [str(as_of.min()), str(as_of.max())] if len(as_of) else [],
            "fixed_horizon_rows": sum(models.stage_rate.counts_.values()) if fixed else 0,
            "positive_rate": getattr(models.base_rate, "rate_", None),
        },
        "close_guard": close.guard_ | {"model_weight": close.weight_},
        "drift": close.drift_,
        "fixed_horizon_guard": (fixed.guard_ | {"model_weight": fixed.weight_}) if fixed else None,
        "next_stage_guard": (nxt.guard_ | {"model_weight": nxt.weight_}) if nxt else None,
    }  # fmt: skip


def guard_messages(models) -> list[str]:
    from models.drift import describe

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


def warn_if_no_labels(run: ModellingRun) -> None:
    if run.metrics["test_window"]["rows_with_known_outcome"] == 0:
        run.messages.append(
            "no test snapshot has a known outcome yet (needs as_of + horizon_days <= data_end): "
            "choose an earlier --as-of"
        )


def format_run(run: ModellingRun) -> str:
    """What the CLI prints: cutoff, training rows, guard decisions, the metric tables and
    the revenue forecast's backtest (``train``)."""
    s = run.summary
    t = s["training"]
    lines = [
        f"cutoff {s['cutoff']}, data_end {s['data_end']}, horizon {s['horizon_days']} days",
        f"training: {t['rows']:,} snapshots, {t['interval_rows']:,} interval rows with "
        f"{t['won_events']:,} wins and {t['lost_events']:,} losses",
        *run.messages,
    ]
    if run.metrics:
        lines += _metric_lines(run.metrics)
    if run.forecast_backtest is not None:
        lines += ["revenue forecast:", *run.forecast_backtest.lines()]
    return "\n".join(lines)


def _metric_lines(m: dict) -> list[str]:
    w = m["test_window"]
    lines = [
        f"test: {w['rows']:,} snapshots {w['first_as_of'][:10]} .. {w['last_as_of'][:10]}, "
        f"{w['rows_with_known_outcome']:,} with a known outcome",
        *(
            [
                f"drift at scoring: {w['rows_scored_by_the_drift_fallback']:,} test snapshots "
                "were scored by the stage-table fallback (features drifted at their date)"
            ]
            if w.get("rows_scored_by_the_drift_fallback")
            else []
        ),
        *(
            [
                f"drift at scoring: {w['rows_scored_by_the_drift_refit']:,} test snapshots "
                "were scored by the model refitted without the features that drifted at "
                "their date"
            ]
            if w.get("rows_scored_by_the_drift_refit")
            else []
        ),
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


def _f(x, digits: int = 3) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"
