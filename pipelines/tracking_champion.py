"""The champion pair as readers see it, and recovery after a killed ``train``.

:func:`load_champion` is what ``score``, ``serve`` and ``forecast`` call: it refuses a pair
that was not trained together (an interrupted promotion) and a champion trained with other
feature settings than ``params.yaml``. :func:`recover` runs at the start of ``train``:
MLflow runs left ``RUNNING`` by a dead process are marked ``FAILED`` and a half-applied
promotion is rolled back. The registry itself is written by :mod:`pipelines.tracking`.
"""

from __future__ import annotations

import ast
import json
import os
import socket
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from features.spec import FeatureSpec, describe_differences
from pipelines.catalog import PARAMS_FILE
from pipelines.progress import step

CHAMPION, CHALLENGER = "champion", "challenger"
FEATURE_SPEC_TAG = "feature_spec"
PAIR_TAG = "pair.next_stage_version"  # on a close version: the next-stage version it goes with
PAIR_CLOSE_TAG = "pair.close_version"  # on a next-stage version: its close partner
NO_PARTNER = "none"
PID_TAG, HOST_TAG = "dealcast.pid", "dealcast.host"
PROGRESS_BAR = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
# when the champion alias moved to / away from a version (UTC, ISO); on the registered
# model, since when dealcast records that (older versions without a record: "unknown")
SERVED_FROM_TAG, SERVED_UNTIL_TAG = "served_from", "served_until"
SERVED_SINCE_TAG = "dealcast.served_recorded_since"


def process_tags() -> dict[str, str]:
    """Who runs this: lets a later start tell a crashed run from a running one."""
    return {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}


@dataclass(frozen=True)
class Champion:
    """The serving models: the fitted estimators behind alias ``champion`` and where they
    came from. ``next_stage`` is None when the pair has no next-stage model."""

    close: object
    next_stage: object | None
    close_version: str
    next_stage_version: str | None
    run_id: str
    horizon_days: int | None
    feature_spec: FeatureSpec | None = None


def champion_of(p) -> Champion:
    """The champion pair named in params ``p`` (``evaluate:``), checked against its feature
    settings (:func:`load_champion`): what ``score`` and ``forecast`` serve."""
    from pipelines.steps import spec_of

    with step("loaded the champion models") as done:
        champion = load_champion(
            close_model_name=p.evaluate.close_model_name,
            next_stage_model_name=p.evaluate.next_stage_model_name,
            spec=spec_of(p.features),
        )
        done.detail = ", ".join(filter(None, (champion.close_version, champion.next_stage_version)))
    return champion


def load_champion(
    *, close_model_name: str, next_stage_model_name: str, spec: FeatureSpec | None
) -> Champion:
    """Load the champion pair and unwrap the fitted estimators.

    Versions read as ``"<name> v<version>"``; ``horizon_days`` is the close model's run
    param ``train.horizon_days`` (None if the run does not have it). Raises ``StepError``
    when the close model has no champion yet, when the next-stage champion is not the
    close champion's partner (an interrupted promotion), and when ``spec`` (the feature
    settings in force) differs from the one the champion was trained with, naming each
    setting; ``spec=None`` skips that check (model review, not scoring).
    """
    from pipelines.steps import StepError

    client = MlflowClient()
    close = champion_version(client, close_model_name)
    if close is None:
        raise StepError("no champion model yet: run `dealcast train` (or `make demo`) first")
    nxt = champion_version(client, next_stage_model_name)
    problem = pair_problem(close, nxt, close_model_name, next_stage_model_name)
    if problem:
        raise StepError(problem + "; run `dealcast train` to repair it")
    run = client.get_run(close.run_id)
    trained = champion_spec(close, run)
    if spec is not None:
        _check_spec(trained, spec, f"{close_model_name} v{close.version}")
    horizon = run.data.params.get("train.horizon_days")
    return Champion(
        close=_estimator(close_model_name, close.version),
        next_stage=_estimator(next_stage_model_name, nxt.version) if nxt is not None else None,
        close_version=f"{close_model_name} v{close.version}",
        next_stage_version=f"{next_stage_model_name} v{nxt.version}" if nxt else None,
        run_id=close.run_id,
        horizon_days=int(horizon) if horizon else None,
        feature_spec=trained,
    )


def pair_problem(close, nxt, close_name: str, next_name: str) -> str:
    """Why the two champion versions do not form the pair trained together ("" if they do).

    A close version without a pair tag predates pair records and is taken as it is."""
    partner = close.tags.get(PAIR_TAG)
    if partner is None:
        return ""
    serving = str(nxt.version) if nxt is not None else NO_PARTNER
    if partner == serving:
        return ""
    return (
        f"the champion pair is inconsistent: {close_name} v{close.version} was trained with "
        f"{next_name} {_v(partner)}, but the {next_name} champion is {_v(serving)} "
        "(a promotion was interrupted)"
    )


def _v(version: str) -> str:
    return "none" if version == NO_PARTNER else f"v{version}"


def champion_spec(version, run) -> FeatureSpec | None:
    """The feature spec a registered version was trained with: its tag, else its run's
    tag, else (runs before the spec existed) the run's ``features.*`` params."""
    text = version.tags.get(FEATURE_SPEC_TAG) or run.data.tags.get(FEATURE_SPEC_TAG)
    if text:
        return FeatureSpec.from_json(text)
    p = run.data.params
    try:
        return FeatureSpec(
            freq=p["features.freq"],
            windows_days=tuple(json.loads(p["features.windows_days"])),
            trend_days=int(p["features.trend_days"]),
            recency_channels=tuple(ast.literal_eval(p["features.recency_channels"])),
            prior_strength=float(p["features.prior_strength"]),
        )
    except (KeyError, ValueError, SyntaxError):
        return None


def _check_spec(trained: FeatureSpec | None, spec: FeatureSpec, label: str) -> None:
    from pipelines.steps import StepError

    if trained is None:
        raise StepError(
            f"the champion {label} has no recorded feature settings, so they cannot be "
            "checked against params.yaml: run `dealcast train` to train a new champion"
        )
    diffs = trained.differences(spec)
    if diffs:
        raise StepError(
            f"the champion {label} was trained with other feature settings than {PARAMS_FILE}: "
            + describe_differences(diffs, ours="champion", theirs=PARAMS_FILE)
            + ". Scoring would build features the model never saw: restore the settings or "
            "run `dealcast train` to train a champion with them"
        )


def record_served(
    client: MlflowClient, names: dict[str, str], versions: dict[str, str], before: dict
) -> None:
    """Tag the versions the champion aliases just moved to (``served_from``) and away from
    (``served_until``): ``before`` is each kind's champion version before the move (or
    None). The first move also marks the registered model (``SERVED_SINCE_TAG``)."""
    now = datetime.now(UTC).isoformat(timespec="seconds")
    for kind, name in names.items():
        new, old = versions.get(kind), before.get(kind)
        if new is None and old is None:
            continue  # no such model (a pair without next-stage model)
        mark_served_recording(client, name, now)
        if old is not None and old != new:
            client.set_model_version_tag(name, old, SERVED_UNTIL_TAG, now)
        if new is not None and new != old:
            client.set_model_version_tag(name, new, SERVED_FROM_TAG, now)


def mark_served_recording(client: MlflowClient, name: str, since: str | None = None) -> None:
    """Tag registered model ``name`` with when the served record began (``since``, default
    now; first call only, nothing if it is not registered yet): versions registered since
    then that never served are "no", older ones "unknown"."""
    try:
        tags = client.get_registered_model(name).tags
    except MlflowException:
        return
    if SERVED_SINCE_TAG not in tags:
        since = since or datetime.now(UTC).isoformat(timespec="seconds")
        client.set_registered_model_tag(name, SERVED_SINCE_TAG, since)


#: On a registered version: the URI of the same settings' backtest model (trained at the
#: backtest cutoff), which stands for the version wherever it is scored on past rows.
BACKTEST_MODEL_TAG = "backtest_model_uri"


def backtest_uri(version, name: str) -> str:
    """The model that stands for registered ``version`` of ``name`` on backtest rows: its
    own backtest model, or the version itself when it was registered without one."""
    return version.tags.get(BACKTEST_MODEL_TAG) or f"models:/{name}/{version.version}"


def champion_version(client: MlflowClient, name: str):
    try:
        return client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None


def _estimator(name: str, version: str):
    """The fitted estimator of a registered version, read from a private copy: loading
    ``models:/`` straight from a local store writes a ``registered_model_meta`` file into
    the model's own artifact folder, and scoring must never change the champion."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="dealcast-model-") as copy, no_progress_bar():
        # suppress_warnings: no check of installed packages against the model's
        # requirements (0.5 s a load; they are dealcast's own pins)
        model = mlflow.pyfunc.load_model(f"models:/{name}/{version}", dst_path=copy,
                                         suppress_warnings=True)  # fmt: skip
        return model.unwrap_python_model().estimator


def recover(*, experiment: str, close_model_name: str, next_stage_model_name: str) -> list[str]:
    """Clean up after a ``train`` that was killed: what was done, for the user.

    Runs of this experiment left ``RUNNING`` by a process that no longer exists (on this
    host) are marked ``FAILED``; a half-applied promotion (next-stage champion moved, close
    champion not) is rolled back to the close champion's partner. Call it holding the
    train lock, so no live train is mistaken for a dead one.
    """
    client = MlflowClient()
    notes = [
        f"marked interrupted MLflow run {r} FAILED" for r in _fail_dead_runs(client, experiment)
    ]
    close = champion_version(client, close_model_name)
    if close is None or close.tags.get(PAIR_TAG) is None:
        return notes
    nxt = champion_version(client, next_stage_model_name)
    problem = pair_problem(close, nxt, close_model_name, next_stage_model_name)
    if problem:
        partner = close.tags[PAIR_TAG]
        if partner == NO_PARTNER:
            client.delete_registered_model_alias(next_stage_model_name, CHAMPION)
        else:
            client.set_registered_model_alias(next_stage_model_name, CHAMPION, partner)
        notes.append(f"{problem}: {next_stage_model_name} champion set back to {_v(partner)}")
    return notes


def _fail_dead_runs(client: MlflowClient, experiment: str) -> list[str]:
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return []
    running = client.search_runs(
        [found.experiment_id], filter_string="attributes.status = 'RUNNING'"
    )
    dead = [r for r in running if _is_dead(r.data.tags)]
    for r in dead:
        client.set_terminated(r.info.run_id, status="FAILED")
        client.set_tag(r.info.run_id, "interrupted", "the process died before the run ended")
    return [r.info.run_id for r in dead]


def _is_dead(tags: dict[str, str]) -> bool:
    """Whether the process that logs this run is gone. Runs without a process tag but
    with a dealcast ``command`` tag predate the tag: no live process can still own them
    (their code is gone), so they count as dead; others are not dealcast's to judge."""
    if PID_TAG not in tags:
        return "command" in tags
    if tags.get(HOST_TAG) != socket.gethostname():
        return False
    pid = int(tags[PID_TAG]) if tags[PID_TAG].isdigit() else -1
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError, ValueError):
        return False
    return False


@contextmanager
def no_progress_bar():
    """MLflow draws a download progress bar on the terminal; a train's output is ours."""
    saved = os.environ.get(PROGRESS_BAR)
    os.environ[PROGRESS_BAR] = "false"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(PROGRESS_BAR, None)
        else:
            os.environ[PROGRESS_BAR] = saved
