"""What the ``train`` and ``evaluate`` steps write: the model file and feature list,
``metrics.json``, ``test_predictions.parquet``, ``drivers.parquet`` and the PNG charts;
plus the data fingerprint and strict-JSON cleaning they rely on."""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from crm.data import CRMData
from pipelines.params import TrainParams

if TYPE_CHECKING:
    from pipelines.modelling import ModellingRun

MODEL_FILE = "models.joblib"
FEATURE_LIST_FILE = "feature_list.json"


def write_evaluation(
    out: Path, run: ModellingRun, test_features: pd.DataFrame, train: TrainParams, *, ece_bins
) -> dict[str, Path]:
    """metrics.json, test_predictions.parquet, drivers.parquet and the two PNG charts."""
    from crm.write import write_frame
    from pipelines.io import write_json_atomic

    out.mkdir(parents=True, exist_ok=True)
    files = {"metrics": out / "metrics.json", "predictions": out / "test_predictions.parquet"}
    write_json_atomic(files["metrics"], clean_json(run.metrics))
    write_frame(run.predictions, files["predictions"])
    for name, fig in charts(run.predictions, ece_bins=ece_bins).items():
        files[name] = out / f"{name}.png"
        fig.savefig(files[name], dpi=110)
    drivers = explain_latest(run.models, test_features, top_n=train.explain_top_n)
    if drivers is not None:
        files["drivers"] = out / "drivers.parquet"
        write_frame(drivers, files["drivers"])
    return files


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
    from models.explain import model_drivers

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


def write_models(artifacts: Path, models) -> dict[str, Path]:
    import joblib

    from pipelines.io import write_json_atomic

    artifacts = Path(artifacts)
    artifacts.mkdir(parents=True, exist_ok=True)
    files = {"models": artifacts / MODEL_FILE, "feature_list": artifacts / FEATURE_LIST_FILE}
    # a name of its own: two processes writing here at once must not share a temp file
    fd, tmp = tempfile.mkstemp(prefix=f".{MODEL_FILE}.", suffix=".tmp", dir=artifacts)
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


def fingerprint(data: CRMData) -> str:
    """SHA-256 of every table's content (row order included), 16 hex digits."""
    digest = hashlib.sha256()
    for name in ("deals", "accounts", "stage_history", "touchpoints"):
        frame = data.table(name)
        digest.update(name.encode())
        if frame is not None:
            digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()[:16]


def clean_json(value):
    """NaN/inf -> None (strict JSON), numpy scalars -> Python."""
    if isinstance(value, dict):
        return {str(k): clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
