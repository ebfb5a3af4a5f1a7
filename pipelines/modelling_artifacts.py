"""What the ``train`` and ``evaluate`` steps write (names: :func:`pipelines.catalog.
evaluation_files`, :func:`pipelines.catalog.model_files`,
:func:`pipelines.catalog.forecast_backtest_files`): the backtest's model file and feature
list, the metrics, test predictions, drivers and the PNG charts, the revenue forecast's
backtest; plus the data fingerprint and strict-JSON cleaning they rely on."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import joblib
import pandas as pd

from crm.write import write_frame
from models.explain import model_drivers
from pipelines.catalog import evaluation_files, forecast_backtest_files, model_files
from pipelines.io import clean_json, write_json_atomic  # noqa: F401 - clean_json re-exported
from pipelines.params import TrainParams
from pipelines.steps import fingerprint  # noqa: F401 - re-exported

if TYPE_CHECKING:
    from pipelines.modelling_report import ForecastBacktest, ModellingRun


def write_evaluation(
    out: Path, run: ModellingRun, test_features: pd.DataFrame, train: TrainParams, *, ece_bins
) -> dict[str, Path]:
    """The metrics, test predictions, drivers and the two PNG charts (the catalogue's
    :func:`~pipelines.catalog.evaluation_files`); drivers only when the model has them."""

    out.mkdir(parents=True, exist_ok=True)
    names = evaluation_files(out)
    files = {"metrics": names["metrics"], "predictions": names["predictions"]}
    write_json_atomic(files["metrics"], clean_json(run.metrics))
    write_frame(run.predictions, files["predictions"])
    for name, fig in charts(run.predictions, ece_bins=ece_bins).items():
        files[name] = names[name]
        fig.savefig(files[name], dpi=110)
    drivers = explain_latest(run.models, test_features, top_n=train.explain_top_n)
    if drivers is not None:
        files["drivers"] = names["drivers"]
        write_frame(drivers, files["drivers"])
    return files


def write_forecast_backtest(folder: Path, backtest: ForecastBacktest) -> dict[str, Path]:
    """The forecast backtest's rows (Parquet, with the ``data_fingerprint`` they were
    computed on) and metrics (strict JSON, with the fingerprint, data end and messages);
    what was written, named for the user."""

    files = forecast_backtest_files(folder)
    rows = backtest.rows.assign(data_fingerprint=backtest.metrics["data_fingerprint"])
    write_frame(rows, files["backtest"])
    metrics = backtest.metrics | {"messages": backtest.messages}
    write_json_atomic(files["backtest_metrics"], clean_json(metrics))
    return {"forecast backtest": files["backtest"], "forecast metrics": files["backtest_metrics"]}


def charts(pred: pd.DataFrame, *, ece_bins: int) -> dict:
    """Reliability diagram and lift chart of the model and the baselines (known rows)."""
    import matplotlib.pyplot as plt

    from models.plots import lift_chart, reliability_diagram

    known = pred[pred["won"].notna()]
    y = known["won"].astype(bool).to_numpy()
    scores = {
        c: known[c].to_numpy(float)
        for c in ("p_win", "p_win_stage_rate", "p_win_logreg", "p_win_base_rate")
        if known[c].notna().all()
    }
    plt.close("all")
    return {
        "reliability": reliability_diagram(y, scores, n_bins=ece_bins),
        "lift": lift_chart(y, scores, n_bins=10),
    }


def explain_latest(models, features: pd.DataFrame, *, top_n: int) -> pd.DataFrame | None:
    """Drivers for the deals of the latest snapshot (the rows a rep would see)."""

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


def write_models(folder: Path, models) -> dict[str, Path]:
    """The fitted models (joblib) and their feature list, into ``folder``."""

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files = model_files(folder)
    # a name of its own: two processes writing here at once must not share a temp file
    fd, tmp = tempfile.mkstemp(prefix=f".{files['models'].name}.", suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        joblib.dump(models, tmp)
        os.replace(tmp, files["models"])
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    write_json_atomic(files["feature_list"], feature_list(models))
    return files


def feature_list(models) -> list[str]:
    return list(models.close.matrix_.columns_)


def trained_record(run: ModellingRun, promotions, *, experiment: str | None) -> dict:
    """What DVC tracks of a ``train`` (:attr:`pipelines.catalog.Catalog.trained`): the
    registered pair, whether it serves, and what it was trained on.

    ``promotions`` are :class:`pipelines.tracking.Promotion` (empty when not tracked,
    ``experiment`` then None). No run id and no time: the record must be the same for the
    same data, params and registry, so the ``dvc.lock`` in the repo stays reproducible; the
    registry names each version's run (``mlflow.MlflowClient().get_model_version``).
    """
    s = run.summary
    return {
        "cutoff": s["cutoff"],
        "data_end": s["data_end"],
        "data_fingerprint": s["data_fingerprint"],
        "horizon_days": s["horizon_days"],
        "features": feature_list(run.models),
        "mlflow_experiment": experiment,
        "models": {
            p.model: {"version": p.version or None, "promoted": p.promoted, "reason": p.reason}
            for p in promotions
        },
        "champion": bool(promotions) and all(p.promoted for p in promotions),
    }
