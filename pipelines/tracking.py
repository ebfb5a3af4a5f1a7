"""MLflow: the only module that imports it. One experiment, one run per training.

A run holds every param (flattened ``params.yaml`` sections), the git commit, the data
fingerprint, every metric of the model and the baselines, the charts, the feature list and
both models as MLflow pyfunc models with signature and input example.

``train`` registers the models fitted on everything known (they are what serves) and logs,
unregistered, the backtest models of the same settings. The new version gets alias
``challenger`` and becomes ``champion`` only if its backtest beats the champion's backtest
model on the same test rows by more than the configured log-loss gain (or if there is no
champion yet). The decision and its reason are run tags. ``evaluate`` only logs.

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
from pipelines.modelling import ModellingRun
from pipelines.modelling_artifacts import charts, clean_json, feature_list

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
    backtest: ModellingRun | None = None,
    register: bool,
) -> tuple[str, list[Promotion]]:
    """Log ``run`` as one MLflow run; with ``register``, register its models and gate them.

    ``run`` is what was fitted; ``backtest`` (for ``train``) is the same settings trained
    earlier and tested on the window after that, whose metrics, charts and models are
    logged in the same run and decide promotion. A backtest alone (``evaluate``) is
    logged but not registered: its model was trained at a past cutoff and must not serve.
    """
    mlflow.set_experiment(experiment)
    report = backtest or run
    with mlflow.start_run(run_name=f"{command} @ {run.prepared.cutoff.date()}") as active:
        mlflow.log_params(flatten(params))
        mlflow.set_tags(_tags(run, command, backtest))
        mlflow.log_metrics(numeric_metrics(report.metrics or report.summary))
        mlflow.log_dict(clean_json(report.metrics or report.summary), "metrics.json")
        mlflow.log_dict({"features": feature_list(run.models)}, "feature_list.json")
        if report.predictions is not None and report.predictions["won"].notna().any():
            ece_bins = report.metrics["definitions"]["ece_bins"]
            for name, fig in charts(report.predictions, ece_bins=ece_bins).items():
                mlflow.log_figure(fig, f"plots/{name}.png")
        if not register:
            return active.info.run_id, []
        backtest_uris = _log_backtest_models(backtest) if backtest is not None else {}
        names = {"close": close_model_name, "next_stage": next_stage_model_name}
        promotions = [
            _register(run, backtest, kind, names[kind], backtest_uris.get(kind), min_gain)
            for kind, _ in _estimators(run)
        ]
        for p in promotions:
            mlflow.set_tag(f"promotion.{p.model}", f"v{p.version}: {p.reason}")
        return active.info.run_id, promotions


def _tags(run: ModellingRun, command: str, backtest: ModellingRun | None) -> dict[str, str]:
    tags = {
        "command": command,
        "git_commit": git_commit(),
        "data_fingerprint": run.prepared.fingerprint,
        "cutoff": str(run.prepared.cutoff),
        "data_end": str(run.prepared.data_end),
    }
    if backtest is not None:
        tags["backtest_cutoff"] = str(backtest.prepared.cutoff)
    return tags


def _estimators(run: ModellingRun) -> list[tuple[str, object]]:
    pairs = [("close", run.models.close)]
    if run.models.next_stage is not None:
        pairs.append(("next_stage", run.models.next_stage))
    return pairs


def _log_pyfunc(run: ModellingRun, kind: str, estimator, *, name: str, registered: str | None):
    example = input_example(run)
    wrapped = PyfuncModel(estimator, kind)
    with warnings.catch_warnings():
        # the signature is given explicitly; the type-hint hint does not apply
        warnings.filterwarnings("ignore", message=".*type hints.*predict")
        return mlflow.pyfunc.log_model(
            name=name,
            python_model=wrapped,
            signature=infer_signature(example, wrapped.predict(None, example)),
            input_example=example,
            pip_requirements=PIP_REQUIREMENTS,
            registered_model_name=registered,
        )


def _log_backtest_models(backtest: ModellingRun) -> dict[str, str]:
    """Log (not register) the backtest's models; the gate of later versions loads them."""
    return {
        kind: _log_pyfunc(backtest, kind, est, name=f"backtest_{kind}", registered=None).model_uri
        for kind, est in _estimators(backtest)
    }


def _register(run, backtest, kind, name, backtest_uri, min_gain) -> Promotion:
    estimator = dict(_estimators(run))[kind]
    info = _log_pyfunc(run, kind, estimator, name=kind, registered=name)
    version = str(info.registered_model_version)
    client = MlflowClient()
    client.set_registered_model_alias(name, CHALLENGER, version)
    client.set_model_version_tag(name, version, "cutoff", str(run.prepared.cutoff))
    if backtest is not None and backtest_uri:
        cutoff = str(backtest.prepared.cutoff)
        client.set_model_version_tag(name, version, "backtest_cutoff", cutoff)
        client.set_model_version_tag(name, version, "backtest_model_uri", backtest_uri)
    return _gate(backtest, kind, name, version, min_gain)


def _gate(
    backtest: ModellingRun | None, kind: str, name: str, version: str, min_gain: float
) -> Promotion:
    """Promote ``version`` if its backtest beats the champion's on the same test rows.

    The champion is represented by its own backtest model (trained at its backtest
    cutoff), scored on this backtest's test rows: a fair comparison when that cutoff is
    not later than ours, since neither model then saw those rows' outcomes.
    """
    client = MlflowClient()
    try:
        champion = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        champion = None
    if champion is None:
        return _promote(name, version, "first model: no champion yet")
    if backtest is None or backtest.predictions is None:
        return Promotion(
            name, version, False, "not promoted: no backtest to compare with the champion"
        )
    uri = champion.tags.get("backtest_model_uri")
    champ_cutoff = pd.Timestamp(champion.tags.get("backtest_cutoff" if uri else "cutoff", "NaT"))
    if pd.isna(champ_cutoff) or champ_cutoff > backtest.prepared.cutoff:
        return Promotion(
            name,
            version,
            False,
            f"not promoted: champion v{champion.version} was trained after this backtest "
            "window began; no fair comparison",
        )
    ours, theirs = _backtest_losses(backtest, kind, uri or f"models:/{name}@{CHAMPION}")
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


@dataclass(frozen=True)
class Champion:
    """The serving models: the fitted estimators behind alias ``champion`` and where they
    came from. ``next_stage`` is None when no next-stage model has a champion."""

    close: object
    next_stage: object | None
    close_version: str
    next_stage_version: str | None
    run_id: str
    horizon_days: int | None


def load_champion(*, close_model_name: str, next_stage_model_name: str) -> Champion:
    """Load ``models:/<name>@champion`` for both models and unwrap the fitted estimators.

    Versions read as ``"<name> v<version>"``; ``horizon_days`` is the close model's run
    param ``train.horizon_days`` (None if the run does not have it). Raises ``StepError``
    when the close model has no champion yet.
    """
    from pipelines.steps import StepError

    client = MlflowClient()
    close = _champion_version(client, close_model_name)
    if close is None:
        raise StepError("no champion model yet: run `dealcast train` (or `make demo`) first")
    nxt = _champion_version(client, next_stage_model_name)
    horizon = client.get_run(close.run_id).data.params.get("train.horizon_days")
    return Champion(
        close=_estimator(close_model_name),
        next_stage=_estimator(next_stage_model_name) if nxt is not None else None,
        close_version=f"{close_model_name} v{close.version}",
        next_stage_version=f"{next_stage_model_name} v{nxt.version}" if nxt else None,
        run_id=close.run_id,
        horizon_days=int(horizon) if horizon else None,
    )


def _champion_version(client: MlflowClient, name: str):
    try:
        return client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None


def _estimator(name: str):
    model = mlflow.pyfunc.load_model(f"models:/{name}@{CHAMPION}")
    return model.unwrap_python_model().estimator


def track_forecast(run, *, params: dict, experiment: str, model_version: str) -> str:
    """Log a ``forecast`` run (a :class:`pipelines.forecasting.ForecastRun`): params, the
    backtest metrics per method, sigma, the forecast table, backtest and fan chart."""
    mlflow.set_experiment(experiment)
    with mlflow.start_run(run_name=f"forecast @ {run.as_of.date()}") as active:
        mlflow.log_params(flatten(params))
        mlflow.set_tags(
            {"command": "forecast", "git_commit": git_commit(), "model_version": model_version,
             "as_of": str(run.as_of)}
        )  # fmt: skip
        metrics = {"forecast": run.metrics.get("methods", {}), "sigma": run.sigma}
        mlflow.log_metrics(numeric_metrics(metrics))
        mlflow.log_dict(clean_json(run.metrics), "forecast_backtest.json")
        for name in ("forecast", "fan_chart", "backtest"):
            if name in run.files:
                mlflow.log_artifact(str(run.files[name]))
        return active.info.run_id
