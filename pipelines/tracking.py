"""MLflow runs and the model registry. One experiment, one run per training.

A run holds every param (flattened ``params.yaml`` sections), the git commit, the data
fingerprint, the feature spec, every metric of the model and the baselines, the charts,
the feature list, the record of its training data (``history/``) and both models as
MLflow pyfunc models with signature, input example and metadata (feature spec, data
fingerprint).

``train`` registers the models fitted on everything known (they are what serves) and logs,
unregistered, the backtest models of the same settings. The new versions get alias
``challenger``, each tagged with its partner (the pair trained together). The pair becomes
``champion`` only if its training data tells the same past as the champion's and each
model's backtest beats the champion's backtest model on the same test rows by more than
the configured log-loss gain (or if there is no champion yet); the decisions are
:mod:`models.promotion`'s. The aliases move only after both versions exist, the close
model's last. The decision and its reason are run tags. ``evaluate`` only logs. Reading
the champion pair back is :mod:`pipelines.tracking_champion`. A ``train`` that would repeat
the champion (or the latest challenger) on the same data and params registers nothing
(:func:`unchanged_champion`); every alias move tags the versions with when they served.

The tracking URI comes from ``MLFLOW_TRACKING_URI`` (the CLI defaults it to the project's
SQLite file); nothing here talks to the network.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient

from features.spec import FeatureSpec
from models import promotion
from models.history_check import HistoryRecord, compare_history, record_history
from models.metric_tree import clean_json, flatten, numeric_metrics
from models.next_stage import consistent_with_close
from models.registry_history import settings_differences
from models.run_outputs import backtest_charts, feature_list
from models.served_frame import model_frame
from pipelines import catalog
from pipelines.modelling_artifacts import trained_record
from pipelines.modelling_report import ModellingRun
from pipelines.steps import clock_of, spec_of
from pipelines.tracking_champion import (  # noqa: F401 - load_champion and recover re-exported
    BACKTEST_MODEL_TAG,
    CHALLENGER,
    CHAMPION,
    FEATURE_SPEC_TAG,
    NO_PARTNER,
    PAIR_CLOSE_TAG,
    PAIR_TAG,
    Champion,
    backtest_uri,
    champion_version,
    load_champion,
    mark_served_recording,
    no_progress_bar,
    process_tags,
    record_served,
    recover,
)

PIP_REQUIREMENTS = ["lightgbm", "scikit-learn", "pandas", "numpy"]
HISTORY_DIR = catalog.RUN_HISTORY
EPOCH = "1970-01-01T00:00:00+00:00"


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
    """One model's gate outcome; ``version`` is empty when it was not registered."""

    model: str
    version: str
    promoted: bool
    reason: str

    @property
    def label(self) -> str:
        return f"v{self.version}" if self.version else "not registered"


def dvc_experiment() -> str | None:
    """The name of the DVC experiment this process runs in (``dvc exp run`` sets it)."""
    return os.environ.get("DVC_EXP_NAME") or None


def experiment_name(experiment: str) -> str:
    """The MLflow experiment of a run: ``experiment``, or under ``dvc exp run`` its
    ``<experiment>-dvc-exp`` sibling, so trials never crowd the production runs."""
    return f"{experiment}-dvc-exp" if dvc_experiment() else experiment


@dataclass(frozen=True)
class Gate:
    """The champion gate's settings (``evaluate:`` in params) and this training's clock."""

    min_gain: float
    max_rewrite_share: float
    accept_rewritten_history: bool
    clock: pd.Timestamp


def track(
    run: ModellingRun, p, *, command: str, backtest: ModellingRun | None = None,
    accept: bool = False,
) -> tuple[str, str, list[Promotion]]:  # fmt: skip
    """Log ``run`` (what was fitted) as one MLflow run under params ``p``; (experiment,
    run id, promotions). ``backtest`` (for ``train``) is the same settings trained earlier
    and tested on the window after that: its metrics, charts and models are logged in the
    same run and decide promotion. Only ``train`` registers and gates (``accept``:
    ``--accept-rewritten-history``); ``evaluate``'s model, trained at a past cutoff, must
    not serve. Under ``dvc exp run`` (:func:`dvc_experiment`) the run goes to
    :func:`experiment_name` and the pair is registered only if the gate promotes it: a
    trial never adds versions to the production registry.
    """
    experiment, spec = experiment_name(p.evaluate.experiment), spec_of(p.features)
    mlflow.set_experiment(experiment)
    with mlflow.start_run(run_name=f"{command} @ {run.prepared.cutoff.date()}") as active:
        mlflow.log_params(flatten(p.model_dump(by_alias=True, mode="json")))
        mlflow.set_tags(_tags(run, command, backtest, spec))
        promotions = _train_gate(run, backtest, p, spec, accept) if command == "train" else []
        # after the models: MLflow 3 links every metric already in the run to each model
        # it logs, one query per metric name (12 s for four models and 400 metrics)
        _log_report(run, backtest or run)
        _log_forecast_backtest(run.forecast_backtest)
        return experiment, active.info.run_id, promotions


def _train_gate(run, backtest, p, spec: FeatureSpec, accept: bool) -> list[Promotion]:
    """``train``'s part of :func:`track`: record the history, gate, register, tag."""
    names = p.evaluate.model_names
    gate = Gate(p.evaluate.promote_min_log_loss_gain, p.evaluate.max_history_rewrite_share,
                accept, clock_of(p.validate_.as_of))  # fmt: skip
    promotions = _gate_and_register(run, backtest, names, spec, gate, _log_history(run),
                                    promoted_only=dvc_experiment() is not None)  # fmt: skip
    for promo in promotions:
        mlflow.set_tag(f"promotion.{promo.model}", f"{promo.label}: {promo.reason}")
    return promotions


def log_train(
    final: ModellingRun, backtest, p, *, accept: bool = False, tracked: bool = True,
    force: bool = False,
):  # fmt: skip
    """What ``train`` (the CLI command and the flow) does after fitting: with ``tracked``
    log, register and gate the pair (:func:`track`); then write the lineage record DVC
    tracks (:attr:`pipelines.catalog.Catalog.trained`). (experiment, run id, promotions),
    (None, None, []) when not tracked. Unless ``force``, a fit that repeats the champion
    (:func:`unchanged_champion`) logs and registers nothing: run id None, the champion
    pair as promotions (the lineage record then names it)."""
    same = None if force or not tracked else unchanged_champion(
        p, fingerprint=final.prepared.fingerprint, cutoff=final.prepared.cutoff)  # fmt: skip
    if same is not None:
        logged = experiment_name(p.evaluate.experiment), None, same
    elif tracked:
        logged = track(final, p, command="train", backtest=backtest, accept=accept)
    else:
        logged = None, None, []
    record = trained_record(final, logged[2], experiment=logged[0])
    final.files["lineage"] = catalog.write_trained(catalog.Catalog(p.paths).trained, record)
    return logged


#: The params ``train`` reads (dvc.yaml's train stage): a flattened key is one of these
#: or starts with one and a dot.
TRAIN_SETTINGS = ("base.seed", "funnel", "features", "train", "evaluate", "forecast")


def train_settings(params: dict[str, object]) -> dict[str, str]:
    """The flattened params (as MLflow keeps them: text) that ``train`` reads."""
    return {
        k: str(v) for k, v in params.items()
        if any(k == s or k.startswith(f"{s}.") for s in TRAIN_SETTINGS)
    }  # fmt: skip


def unchanged_champion(p, *, fingerprint: str, cutoff: pd.Timestamp) -> list[Promotion] | None:
    """The registered pair a ``train`` of the data ``fingerprint`` at ``cutoff`` under
    params ``p`` would repeat, as promotions saying nothing changed: the champion, else the
    latest challenger (a refused pair is not registered again and again), when its run
    has the same data fingerprint, cutoff, :data:`TRAIN_SETTINGS` params and (when both
    are known) git commit. None otherwise."""
    client, name = MlflowClient(), p.evaluate.close_model_name
    ours = train_settings(flatten(p.model_dump(by_alias=True, mode="json")))
    for alias in (CHAMPION, CHALLENGER):
        try:
            close = client.get_model_version_by_alias(name, alias)
        except MlflowException:
            continue
        run = client.get_run(close.run_id).data
        commits = {run.tags.get("git_commit", "unknown"), git_commit()} - {"unknown"}
        if (
            (run.tags.get("data_fingerprint"), run.tags.get("cutoff")) == (fingerprint, str(cutoff))
            and len(commits) <= 1
            and not settings_differences(ours, train_settings(run.params))
        ):
            return _unchanged_pair(p, close, alias)
    return None


def _unchanged_pair(p, close, alias: str) -> list[Promotion]:
    version, serves = str(close.version), alias == CHAMPION
    reason = nothing_changed(version, alias)
    if not serves:
        reason += f"; it does not serve (`dealcast models promote {version}` would serve it)"
    partner = close.tags.get(PAIR_TAG, NO_PARTNER)
    pair = [Promotion(p.evaluate.close_model_name, version, serves, reason)]
    if partner != NO_PARTNER:
        pair.append(Promotion(p.evaluate.next_stage_model_name, partner, serves, reason))
    return pair


def nothing_changed(version: str, alias: str = CHAMPION) -> str:
    return (f"nothing changed since {alias} v{version} (same data fingerprint and params): "
            "no new version")  # fmt: skip


def recover_registry(p) -> list[str]:
    """:func:`pipelines.tracking_champion.recover` for the names in params ``p``."""
    return recover(experiment=p.evaluate.experiment, close_model_name=p.evaluate.close_model_name,
                   next_stage_model_name=p.evaluate.next_stage_model_name)  # fmt: skip


def _log_report(run: ModellingRun, report: ModellingRun) -> None:
    """The metrics and charts of ``report`` (the backtest, if any) and ``run``'s features."""
    mlflow.log_metrics(numeric_metrics(report.metrics or report.summary))
    mlflow.log_dict(clean_json(report.metrics or report.summary), catalog.RUN_METRICS)
    mlflow.log_dict({"features": feature_list(run.models)}, catalog.RUN_FEATURE_LIST)
    if report.predictions is not None and report.predictions["won"].notna().any():
        ece_bins = report.metrics["definitions"]["ece_bins"]
        for name, fig in backtest_charts(report.predictions, ece_bins=ece_bins).items():
            mlflow.log_figure(fig, f"{catalog.RUN_PLOTS}/{name}{catalog.PNG}")


def _log_forecast_backtest(made) -> None:
    """``train``'s revenue forecast backtest (a :class:`pipelines.modelling_report.
    ForecastBacktest`, or None): the dealcast method's WAPE, bias and coverage for months
    and quarters (``forecast_backtest.dealcast.*``), its metrics JSON and the data
    fingerprint it was computed on (tag ``forecast_backtest.data_fingerprint``)."""
    if made is None:
        return
    prefix = catalog.FORECAST_BACKTEST  # the metrics are named like the files
    dealcast = made.metrics.get("methods", {}).get("dealcast", {})
    mlflow.log_metrics(numeric_metrics({prefix: {"dealcast": dealcast}}))
    mlflow.log_dict(clean_json(made.metrics | {"messages": made.messages}),
                    catalog.RUN_FORECAST_METRICS)  # fmt: skip
    mlflow.set_tag(f"{prefix}.data_fingerprint", made.metrics["data_fingerprint"])


def _tags(run, command: str, backtest, spec: FeatureSpec) -> dict[str, str]:
    tags = {
        "command": command,
        "git_commit": git_commit(),
        "data_fingerprint": run.prepared.fingerprint,
        "cutoff": str(run.prepared.cutoff),
        "data_end": str(run.prepared.data_end),
        FEATURE_SPEC_TAG: spec.to_json(),
    } | process_tags()
    if backtest is not None:
        tags["backtest_cutoff"] = str(backtest.prepared.cutoff)
    close = run.models.close
    tags["close.decision"] = close.guard_.get("decision", "")
    drift = getattr(close, "drift_", [])
    tags["close.drifted_features_left_out"] = (
        "; ".join(f"{d['feature']}: {d['reason']}" for d in drift)[:5000] or "none"
    )
    return tags


def _estimators(run: ModellingRun) -> list[tuple[str, object]]:
    pairs = [("close", run.models.close)]
    if run.models.next_stage is not None:
        pairs.append(("next_stage", run.models.next_stage))
    return pairs


def _log_pyfunc(run, kind: str, estimator, *, name: str, registered: str | None, metadata=None):
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
            metadata=metadata,
        )


def _log_history(run: ModellingRun) -> HistoryRecord:
    """Record the training data (rows, outcomes, per closed deal hashes) in ``history/``."""
    record = record_history(run.prepared.data, data_end=run.prepared.data_end)
    mlflow.log_dict(clean_json(record.summary()), f"{HISTORY_DIR}/{catalog.RUN_HISTORY_SUMMARY}")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / catalog.RUN_HISTORY_CLOSED
        record.closed.to_parquet(path, index=False)
        mlflow.log_artifact(str(path), HISTORY_DIR)
    return record


def _register_pair(run, backtest, names: dict[str, str], spec: FeatureSpec) -> dict[str, str]:
    """Register every model of ``run`` (alias ``challenger``), tagged with its pair.

    Nothing serves yet: the champion aliases move only in :func:`_apply`, after every
    version of the pair exists and carries its tags.
    """
    client = MlflowClient()
    for name in names.values():  # versions from now on have a served record
        mark_served_recording(client, name)
    uris = {}
    if backtest is not None:
        uris = {
            kind: _log_pyfunc(backtest, kind, est, name=f"backtest_{kind}", registered=None)
            .model_uri for kind, est in _estimators(backtest)
        }  # fmt: skip
    metadata = {FEATURE_SPEC_TAG: spec.to_json(), "data_fingerprint": run.prepared.fingerprint}
    versions = {}
    for kind, estimator in _estimators(run):
        info = _log_pyfunc(run, kind, estimator, name=kind, registered=names[kind],
                           metadata=metadata)  # fmt: skip
        version = versions[kind] = str(info.registered_model_version)
        tags = {"cutoff": str(run.prepared.cutoff), FEATURE_SPEC_TAG: spec.to_json()}
        if kind in uris:
            tags |= {"backtest_cutoff": str(backtest.prepared.cutoff),
                     BACKTEST_MODEL_TAG: uris[kind]}  # fmt: skip
        for key, value in tags.items():
            client.set_model_version_tag(names[kind], version, key, value)
    partner = versions.get("next_stage", NO_PARTNER)
    client.set_model_version_tag(names["close"], versions["close"], PAIR_TAG, partner)
    if "next_stage" in versions:
        client.set_model_version_tag(names["next_stage"], partner, PAIR_CLOSE_TAG,
                                     versions["close"])  # fmt: skip
    for kind, version in versions.items():
        client.set_registered_model_alias(names[kind], CHALLENGER, version)
        # still unmarked: registered just now for the first time, so recorded from the start
        mark_served_recording(client, names[kind], since=EPOCH)
    return versions


def _gate_and_register(
    run, backtest, names, spec: FeatureSpec, gate: Gate, record, *, promoted_only: bool
) -> list[Promotion]:
    """Decide for each model of the pair, register the pair (with ``promoted_only`` only
    if it is promoted), then promote it as one or not at all."""
    client = MlflowClient()
    kinds = [kind for kind, _ in _estimators(run)]
    champion = champion_version(client, names["close"])
    decisions = promotion.decide_models(
        kinds, max_rewrite_share=gate.max_rewrite_share, accept=gate.accept_rewritten_history,
        history=None if champion is None else lambda: _history_check(champion, record, gate.clock),
        decide_one=lambda kind: _decide(client, backtest, kind, names, gate.min_gain),
    )  # fmt: skip
    promote = all(d.promote for d in decisions.values())
    if promoted_only and not promote:
        versions = dict.fromkeys(kinds, "")
    else:
        versions = _register_pair(run, backtest, names, spec)
        if promote:
            _apply(client, names, versions)
    return [
        Promotion(names[kind], versions[kind], d.promote,
                  f"promoted to champion: {d.reason}" if d.promote else d.reason)
        for kind, d in decisions.items()
    ]  # fmt: skip


def load_pyfunc(uri: str):
    """A pyfunc model dealcast logged itself, without MLflow's check of the installed
    packages against its requirements (0.5 s a load; the requirements are our own pins)."""
    return mlflow.pyfunc.load_model(uri, suppress_warnings=True)


def _history_check(champion, record: HistoryRecord, clock: pd.Timestamp):
    """The challenger's data against the champion's record (None if it has none)."""
    try:
        with tempfile.TemporaryDirectory() as tmp, no_progress_bar():
            folder = Path(mlflow.artifacts.download_artifacts(
                run_id=champion.run_id, artifact_path=HISTORY_DIR, dst_path=tmp))  # fmt: skip
            summary = catalog.read_json(folder / catalog.RUN_HISTORY_SUMMARY)
            closed = pd.read_parquet(folder / catalog.RUN_HISTORY_CLOSED)
    except (MlflowException, OSError, ValueError):
        return None
    return compare_history(HistoryRecord.from_parts(summary, closed), record, clock=clock)


def _decide(client, backtest, kind: str, names: dict[str, str], min_gain: float):
    """This model's gate (:func:`models.promotion.judge`), the champion represented by its
    own backtest model (versions without one: itself), scored on our backtest's rows as
    it would serve them (:func:`_champion_scores`)."""
    name = names[kind]
    champion = champion_version(client, name)
    if champion is None:
        return promotion.first_model()
    if backtest is None:
        return promotion.NO_BACKTEST
    cutoff_tag = "backtest_cutoff" if champion.tags.get(BACKTEST_MODEL_TAG) else "cutoff"
    decision = promotion.judge(
        kind, predictions=backtest.predictions, challenger_cutoff=backtest.prepared.cutoff,
        champion_version=str(champion.version), min_gain=min_gain,
        champion_cutoff=pd.Timestamp(champion.tags.get(cutoff_tag, "NaT")),
        champion_scores=lambda: _champion_scores(client, backtest, kind, names),
    )  # fmt: skip
    if decision.challenger_loss is not None:
        mlflow.log_metrics({f"gate.{kind}.challenger_log_loss": decision.challenger_loss,
                            f"gate.{kind}.champion_log_loss": decision.champion_loss})  # fmt: skip
    return decision


def _champion_uri(client, name: str) -> str:
    """The champion's own backtest model (the version itself when it has none)."""
    return backtest_uri(champion_version(client, name), name)


def _champion_scores(client, backtest, kind: str, names: dict[str, str]) -> pd.DataFrame:
    """The champion's scores of ``kind`` on our backtest rows, made as the challenger's
    were: next-stage probabilities agree with the champion close model's p_win
    (:func:`models.next_stage.consistent_with_close`, what is served), so the gate compares
    like with like."""
    frame = model_frame(backtest.test_features)
    scores = load_pyfunc(_champion_uri(client, names[kind])).predict(frame)
    if kind == "close" or champion_version(client, names["close"]) is None:
        return scores
    p_win = load_pyfunc(_champion_uri(client, names["close"])).predict(frame)["p_win"]
    return consistent_with_close(scores, p_win.to_numpy())


def _apply(client: MlflowClient, names: dict[str, str], versions: dict[str, str]) -> None:
    """Move the champion aliases: the next-stage model first, the close model last.

    The close champion's pair tag names its next-stage partner, so the close alias is the
    commit: a crash between the two moves leaves a mismatch that readers refuse and
    :func:`recover` rolls back.
    """
    before = {kind: _version_of(champion_version(client, name)) for kind, name in names.items()}
    if "next_stage" in versions:
        client.set_registered_model_alias(names["next_stage"], CHAMPION, versions["next_stage"])
    elif before["next_stage"] is not None:
        client.delete_registered_model_alias(names["next_stage"], CHAMPION)
    client.set_registered_model_alias(names["close"], CHAMPION, versions["close"])
    record_served(client, names, versions, before)


def _version_of(found) -> str | None:
    return None if found is None else str(found.version)


def input_example(run: ModellingRun) -> pd.DataFrame:
    source = run.test_features if run.test_features is not None else run.prepared.train.features
    return model_frame(source.head(5))


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
            cwd=Path(__file__).resolve().parent,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def track_forecast(run, p, *, model_version: str) -> str:
    """Log a ``forecast`` run (a :class:`pipelines.forecasting.ForecastRun`) under params
    ``p``: params, the metrics per method of train's backtest it showed (if any), sigma,
    the forecast table and fan chart."""
    mlflow.set_experiment(experiment_name(p.evaluate.experiment))
    with mlflow.start_run(run_name=f"forecast @ {run.as_of.date()}") as active:
        mlflow.log_params(flatten(p.model_dump(by_alias=True, mode="json")))
        mlflow.set_tags(
            {"command": "forecast", "git_commit": git_commit(), "model_version": model_version,
             "as_of": str(run.as_of)} | process_tags()
        )  # fmt: skip
        metrics = {"forecast": run.metrics.get("methods", {}), "sigma": run.sigma}
        mlflow.log_metrics(numeric_metrics(metrics))
        mlflow.log_dict(clean_json(run.metrics), catalog.RUN_FORECAST_METRICS)
        for name in ("forecast", "fan_chart", "backtest"):
            if name in run.files:
                mlflow.log_artifact(str(run.files[name]))
        return active.info.run_id
