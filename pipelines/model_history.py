"""The registry's history for ``dealcast models``: read the versions, move the champion
pair by hand, and score two versions on the same backtest rows.

What a version record says and how it is printed is :mod:`models.registry_history`'s.
Moving the champion reuses :func:`pipelines.tracking._apply` (the next-stage alias first,
the close alias last, so a crash half-way is repaired by the next ``train`` exactly like
an interrupted promotion) and records the move three times: the ``served_from`` /
``served_until`` tags, a ``champion.move`` tag with the reason on both versions, and an
MLflow run (``command`` promote or rollback) in the project's experiment.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from datetime import UTC, datetime

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from features.spec import describe_differences
from models.registry_history import BACKTEST_METRICS, VersionRecord, previous_champion
from pipelines.catalog import PARAMS_FILE
from pipelines.steps import StepError, spec_of
from pipelines.tracking import _apply, experiment_name
from pipelines.tracking_champion import (
    NO_PARTNER,
    PAIR_TAG,
    SERVED_FROM_TAG,
    SERVED_SINCE_TAG,
    SERVED_UNTIL_TAG,
    champion_spec,
    champion_version,
    process_tags,
)

MOVE_TAG = "champion.move"  # on both versions of a pair moved by hand: when, who, why


def version_records(p) -> list[VersionRecord]:
    """Every registered version of the close model in params ``p``, with its run's
    backtest metrics and tags (one registry search and one run read per version)."""
    client, name = MlflowClient(), p.evaluate.close_model_name
    try:
        found = list(client.search_model_versions(f"name='{name}'"))
        since = client.get_registered_model(name).tags.get(SERVED_SINCE_TAG)
    except MlflowException:
        return []
    champion = champion_version(client, name)
    current = None if champion is None else str(champion.version)
    return [
        _record(client, v, name, current=current, since=since) for v in found if v.status == "READY"
    ]


def _record(client, version, name: str, *, current: str | None, since) -> VersionRecord:
    try:
        run = client.get_run(version.run_id).data
        tags, metrics = run.tags, run.metrics
    except MlflowException:  # the run was deleted: the version still serves
        tags, metrics = {}, {}
    promotion = tags.get(f"promotion.{name}", "")
    note = version.tags.get(MOVE_TAG) or promotion.split(": ", 1)[-1]
    return VersionRecord(
        version=str(version.version),
        partner=version.tags.get(PAIR_TAG, "-"),
        created=pd.Timestamp(version.creation_timestamp, unit="ms", tz="UTC"),
        cutoff=version.tags.get("cutoff", tags.get("cutoff", "")),
        data_end=tags.get("data_end", ""),
        backtest_cutoff=version.tags.get("backtest_cutoff", ""),
        fingerprint=tags.get("data_fingerprint", ""),
        champion=str(version.version) == current,
        note=note,
        metrics={k: metrics[key] for k, key in BACKTEST_METRICS.items() if key in metrics},
        served_from=version.tags.get(SERVED_FROM_TAG),
        served_until=version.tags.get(SERVED_UNTIL_TAG),
        tracked_since=pd.Timestamp(since) if since else None,
        promoted_at_train=" promoted to champion" in f" {promotion.split(': ', 1)[-1]}",
    )


@dataclass(frozen=True)
class Move:
    """A champion move by hand: the pair before and after, and why."""

    action: str
    close: str
    next_stage: str | None
    before: str | None
    reason: str
    run_id: str

    def lines(self, names: dict[str, str]) -> list[str]:
        pair = f"{names['close']} v{self.close}" + (
            f" + {names['next_stage']} v{self.next_stage}" if self.next_stage else ""
        )
        was = f"v{self.before}" if self.before else "none"
        return [f"{self.action}: champion is now {pair} (was {was})", f"reason: {self.reason}",
                f"recorded in mlflow run {self.run_id}"]  # fmt: skip


def rollback_target(p, version: str | None) -> str:
    """``version``, or by default the champion before the current one
    (:func:`models.registry_history.previous_champion`); StepError when there is none."""
    if version:
        return version
    records = version_records(p)
    current = next((r.version for r in records if r.champion), None)
    target = previous_champion(records, current=current)
    if target is None:
        raise StepError(
            "no previous champion to roll back to (none recorded): name the version, "
            "`dealcast models rollback VERSION --reason ...`; `dealcast models` lists them"
        )
    return target


def move_champion(p, version: str, *, reason: str, action: str) -> Move:
    """Make the pair of close ``version`` the champion (``action``: promote or rollback),
    after checking it is whole and trained with the feature settings of params ``p``;
    StepError (exit 2) naming the problem otherwise. Hold the train lock around it."""
    client, names = MlflowClient(), p.evaluate.model_names
    versions = checked_pair(client, p, str(version).removeprefix("v"))
    before = champion_version(client, names["close"])
    was = None if before is None else str(before.version)
    if was == versions["close"]:
        raise StepError(f"{names['close']} v{was} is already the champion: nothing moved")
    _apply(client, names, versions)
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    note = f"{stamp} {action} by {getpass.getuser()} (was v{was}): {reason}"
    for kind, number in versions.items():
        client.set_model_version_tag(names[kind], number, MOVE_TAG, note)
    run_id = _log_move(p, action, versions, was, reason)
    return Move(action, versions["close"], versions.get("next_stage"), was, reason, run_id)


def checked_pair(client, p, version: str) -> dict[str, str]:
    """``{"close": version, "next_stage": partner}`` (no next-stage key when the pair has
    none) for a version that may serve; StepError otherwise."""
    names = p.evaluate.model_names
    label = f"{names['close']} v{version}"
    try:
        close = client.get_model_version(names["close"], version)
        partner = close.tags.get(PAIR_TAG)
        if partner is None:
            raise StepError(f"{label} has no recorded next-stage partner (it predates pair "
                            "records), so it cannot serve as a pair")  # fmt: skip
        if partner != NO_PARTNER:
            client.get_model_version(names["next_stage"], partner)
        run = client.get_run(close.run_id)
    except MlflowException:
        raise StepError(f"{label} or its next-stage partner is not in the registry; "
                        "`dealcast models` lists the versions") from None  # fmt: skip
    trained, ours = champion_spec(close, run), spec_of(p.features)
    diffs = ["no recorded feature settings"] if trained is None else trained.differences(ours)
    if diffs:
        why = diffs[0] if trained is None else describe_differences(diffs, ours=label,
                                                                    theirs=PARAMS_FILE)  # fmt: skip
        raise StepError(f"{label} was trained with other feature settings than {PARAMS_FILE} "
                        f"({why}); scoring would build features it never saw")  # fmt: skip
    return {"close": version} | ({} if partner == NO_PARTNER else {"next_stage": partner})


def _log_move(p, action: str, versions: dict[str, str], was: str | None, reason: str) -> str:
    """An MLflow run recording the move: the history of champion changes made by hand."""
    mlflow.set_experiment(experiment_name(p.evaluate.experiment))
    with mlflow.start_run(run_name=f"{action} v{versions['close']}") as active:
        mlflow.set_tags({"command": action, "reason": reason, "user": getpass.getuser(),
                         "from_version": was or "none", "to_version": versions["close"],
                         "to_next_stage_version": versions.get("next_stage", NO_PARTNER)}
                        | process_tags())  # fmt: skip
        return active.info.run_id
