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
from models.metric_tree import clean_json
from models.run_outputs import backtest_charts, feature_list, latest_drivers
from pipelines.catalog import evaluation_files, forecast_backtest_files, model_files
from pipelines.io import write_json_atomic
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
    for name, fig in backtest_charts(run.predictions, ece_bins=ece_bins).items():
        files[name] = names[name]
        fig.savefig(files[name], dpi=110)
    drivers = latest_drivers(run.models, test_features, top_n=train.explain_top_n)
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
