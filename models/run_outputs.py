"""What a training run shows beside its metrics: the lines the CLI prints first, the
backtest's charts, the drivers of its latest snapshot and the model's feature list."""

from __future__ import annotations

import pandas as pd

from models.explain import model_drivers

#: Prediction columns the charts draw, the served model first.
CHART_SCORES = ("p_win", "p_win_stage_rate", "p_win_logreg", "p_win_base_rate")


def run_lines(summary: dict, messages: list[str]) -> list[str]:
    """Cutoff, data end, horizon and training rows (a training summary,
    :func:`models.backtest.training_summary`), then ``messages``."""
    t = summary["training"]
    return [
        f"cutoff {summary['cutoff']}, data_end {summary['data_end']}, horizon "
        f"{summary['horizon_days']} days",
        f"training: {t['rows']:,} snapshots, {t['interval_rows']:,} interval rows with "
        f"{t['won_events']:,} wins and {t['lost_events']:,} losses",
        *messages,
    ]


def backtest_charts(pred: pd.DataFrame, *, ece_bins: int) -> dict:
    """Reliability diagram and lift chart of the model and the baselines (known rows)."""
    from models.plots import lift_chart, reliability_diagram

    known = pred[pred["won"].notna()]
    y = known["won"].astype(bool).to_numpy()
    scores = {c: known[c].to_numpy(float) for c in CHART_SCORES if known[c].notna().all()}
    return {
        "reliability": reliability_diagram(y, scores, n_bins=ece_bins),
        "lift": lift_chart(y, scores, n_bins=10),
    }


def latest_drivers(models, features: pd.DataFrame, *, top_n: int) -> pd.DataFrame | None:
    """Drivers for the deals of the latest snapshot (the rows a rep would see), keyed by
    ``deal_id`` and ``as_of``; None when there are none."""
    if features.empty:
        return None
    rows = features[features["as_of"] == features["as_of"].max()].reset_index(drop=True)
    drivers = model_drivers(models.close, rows, top_n=top_n)
    if drivers is None:
        return None
    keys = rows[["deal_id", "as_of"]].iloc[drivers["row"].to_numpy()].reset_index(drop=True)
    drivers = pd.concat([keys, drivers.drop(columns="row")], axis=1)
    drivers["value"] = drivers["value"].astype("str")
    return drivers


def feature_list(models) -> list[str]:
    """The close model's input columns, in order."""
    return list(models.close.matrix_.columns_)
