"""MLflow: the only module that imports it. One experiment, one run per training.

A run holds every param (flattened ``params.yaml`` sections), the git commit, the data
fingerprint, every metric of the model and the baselines, the charts, the feature list and
both models as MLflow pyfunc models with signature and input example. Each is registered;
the new version gets alias ``challenger`` and becomes ``champion`` only if it beats the
current champion's log loss on the same backtest rows by more than the configured gain
(or if there is no champion yet). The decision and its reason are run tags.

The tracking URI comes from ``MLFLOW_TRACKING_URI`` (the CLI defaults it to the project's
SQLite file); nothing here talks to the network.
"""

from __future__ import annotations

import logging
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient

from models.metrics import binary_log_loss, multiclass_metrics
from pipelines.modelling import ModellingRun, charts, clean_json, feature_list

log = logging.getLogger(__name__)

PIP_REQUIREMENTS = ["lightgbm", "scikit-learn", "pandas", "numpy"]
CHAMPION, CHALLENGER = "champion", "challenger"


class PyfuncModel(mlflow.pyfunc.PythonModel):
    """A fitted dealcast estimator behind MLflow's pyfunc interface.

    Input: the feature frame (keys optional, categories as strings). Output: ``p_win`` for
    the close model, one probability column per state for the next-stage model.
    """

    def __init__(self, estimator, kind: str):
        self.estimator = estimator
        self.kind = kind

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        if self.kind == "close":
            return pd.DataFrame({"p_win": self.estimator.predict_proba(model_input)[:, 1]})
        return self.estimator.predict_proba(model_input).reset_index(drop=True)


@dataclass(frozen=True)
class Promotion:
    model: str
    version: str
    promoted: bool
    reason: str


def track(
    run: ModellingRun,
    *,
    command: str,
    params: dict,
    experiment: str,
    close_model_name: str,
    next_stage_model_name: str,
    min_gain: float,
) -> tuple[str, list[Promotion]]:
    """Log ``run`` as one MLflow run, register its models, apply the champion gate."""
    mlflow.set_experiment(experiment)
    cutoff = run.prepared.cutoff
    with mlflow.start_run(run_name=f"{command} @ {cutoff.date()}") as active:
        mlflow.log_params(flatten(params))
        mlflow.set_tags(
            {
                "command": command,
                "git_commit": git_commit(),
                "data_fingerprint": run.prepared.fingerprint,
                "cutoff": str(cutoff),
                "data_end": str(run.prepared.data_end),
            }
        )
        mlflow.log_metrics(numeric_metrics(run.metrics or run.summary))
        mlflow.log_dict(clean_json(run.metrics or run.summary), "metrics.json")
        mlflow.log_dict({"features": feature_list(run.models)}, "feature_list.json")
        if run.predictions is not None and run.predictions["won"].notna().any():
            ece_bins = run.metrics["definitions"]["ece_bins"]
            for name, fig in charts(run.predictions, ece_bins=ece_bins).items():
                mlflow.log_figure(fig, f"plots/{name}.png")
        promotions = _log_and_register(run, close_model_name, next_stage_model_name, min_gain)
        for p in promotions:
            mlflow.set_tag(f"promotion.{p.model}", f"v{p.version}: {p.reason}")
        return active.info.run_id, promotions


def _log_and_register(run, close_name, next_name, min_gain) -> list[Promotion]:
    example = input_example(run)
    out = []
    pairs = [("close", close_name, run.models.close)]
    if run.models.next_stage is not None:
        pairs.append(("next_stage", next_name, run.models.next_stage))
    for kind, name, estimator in pairs:
        wrapped = PyfuncModel(estimator, kind)
        output = wrapped.predict(None, example)
        with warnings.catch_warnings():
            # the signature is given explicitly; the type-hint hint does not apply
            warnings.filterwarnings("ignore", message=".*type hints.*predict")
            info = mlflow.pyfunc.log_model(
                name=kind,
                python_model=wrapped,
                signature=infer_signature(example, output),
                input_example=example,
                pip_requirements=PIP_REQUIREMENTS,
                registered_model_name=name,
            )
        version = str(info.registered_model_version)
        client = MlflowClient()
        client.set_registered_model_alias(name, CHALLENGER, version)
        client.set_model_version_tag(name, version, "cutoff", str(run.prepared.cutoff))
        out.append(_gate(run, kind, name, version, min_gain))
    return out


def _gate(run: ModellingRun, kind: str, name: str, version: str, min_gain: float) -> Promotion:
    """Promote ``version`` to champion if it beats the champion on the same backtest rows."""
    client = MlflowClient()
    try:
        champion = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        champion = None
    if champion is None:
        return _promote(name, version, "first model: no champion yet")
    if run.predictions is None:
        return Promotion(
            name,
            version,
            False,
            "not promoted: promotion needs a backtest "
            "(dealcast evaluate) to compare with the champion",
        )
    champ_cutoff = pd.Timestamp(champion.tags.get("cutoff", "NaT"))
    if pd.isna(champ_cutoff) or champ_cutoff > run.prepared.cutoff:
        return Promotion(
            name,
            version,
            False,
            f"not promoted: champion v{champion.version} "
            "was trained after this backtest window began; no fair comparison",
        )
    ours, theirs = _backtest_losses(run, kind, f"models:/{name}@{CHAMPION}")
    if ours is None:
        return Promotion(name, version, False, "not promoted: no known outcomes in the window")
    mlflow.log_metrics(
        {f"gate.{kind}.challenger_log_loss": ours, f"gate.{kind}.champion_log_loss": theirs}
    )
    if ours < theirs - min_gain:
        return _promote(
            name,
            version,
            f"log loss {ours:.4f} beats champion "
            f"v{champion.version} {theirs:.4f} by more than {min_gain}",
        )
    return Promotion(
        name,
        version,
        False,
        f"not promoted: log loss {ours:.4f} vs champion "
        f"v{champion.version} {theirs:.4f} (needs a gain above {min_gain})",
    )


def _promote(name: str, version: str, reason: str) -> Promotion:
    MlflowClient().set_registered_model_alias(name, CHAMPION, version)
    return Promotion(name, version, True, f"promoted to champion: {reason}")


def _backtest_losses(run: ModellingRun, kind: str, uri: str):
    pred, X = run.predictions, run.test_features.reset_index(drop=True)
    champion = mlflow.pyfunc.load_model(uri)
    if kind == "close":
        known = pred["won"].notna().to_numpy()
        if not known.any():
            return None, None
        y = pred.loc[known, "won"].astype(bool).to_numpy()
        theirs = champion.predict(model_frame(X[known]))["p_win"].to_numpy()
        return binary_log_loss(y, pred.loc[known, "p_win"]), binary_log_loss(y, theirs)
    known = pred["next_stage_true"].notna().to_numpy()
    if not known.any():
        return None, None
    truth = pred.loc[known, "next_stage_true"]
    ours = pred.loc[known, [c for c in pred if c.startswith("p_next__")]]
    ours = ours.rename(columns=lambda c: c.removeprefix("p_next__"))
    theirs = champion.predict(model_frame(X[known]))
    return (
        multiclass_metrics(truth, ours.reset_index(drop=True))["log_loss"],
        multiclass_metrics(truth.reset_index(drop=True), theirs)["log_loss"],
    )


def model_frame(features: pd.DataFrame) -> pd.DataFrame:
    """Features as the served models take them: no keys, categories as strings."""
    X = features.drop(columns=["deal_id", "as_of"], errors="ignore").reset_index(drop=True)
    for c in X.columns:
        if isinstance(X[c].dtype, pd.CategoricalDtype):
            X[c] = X[c].astype("object").where(X[c].notna(), None).astype("str")
    return X


def input_example(run: ModellingRun) -> pd.DataFrame:
    source = run.test_features if run.test_features is not None else run.prepared.train.features
    return model_frame(source.head(5))


def flatten(tree: dict, prefix: str = "") -> dict[str, object]:
    """Nested sections as ``a.b.c`` keys; lists as their text."""
    out: dict[str, object] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out |= flatten(value, f"{name}.")
        else:
            out[name] = str(list(value)) if isinstance(value, list | tuple) else value
    return out


def numeric_metrics(tree: dict) -> dict[str, float]:
    """Every finite number in the metrics tree, keyed by its path (MLflow-safe names)."""
    out = {}
    for key, value in flatten(clean_json(tree)).items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if np.isfinite(value):
            out[key.replace(" ", "_").replace("(", "").replace(")", "")] = float(value)
    return out


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
            cwd=Path(__file__).resolve().parent,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"
