"""``dealcast models compare A B``: two registered pairs scored on the same backtest rows.

MLflow keeps a training's backtest metrics but not its test rows, so the rows are rebuilt
from the CRM with the project's own snapshot and label code, as the champion gate builds
them (:func:`pipelines.tracking._decide`): every deal open at each snapshot after the newer
version's backtest cutoff, labelled with what the data's end knows (a snapshot whose
horizon is not over has no label and is not counted, as in training). Each version is
represented by its own backtest model (trained at its backtest cutoff, so neither saw the
outcomes of these rows); a version registered without one is scored with its served model,
and the output says so. The numbers are :func:`models.registry_history.compare_scores`'.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from features.build import build_feature_set
from features.spec import FeatureSpec
from models.registry_history import compare_next_stage, compare_scores
from models.served_frame import model_frame
from pipelines.modelling import prepare
from pipelines.steps import StepError, load_for, spec_of
from pipelines.tracking import load_pyfunc
from pipelines.tracking_champion import (
    BACKTEST_MODEL_TAG,
    NO_PARTNER,
    PAIR_TAG,
    backtest_uri,
    champion_spec,
    no_progress_bar,
)


@dataclass(frozen=True)
class Side:
    """One version to compare: its models' URIs, when they were trained, its settings."""

    version: str
    close_uri: str
    next_uri: str | None
    cutoff: pd.Timestamp
    own_backtest: bool
    spec: FeatureSpec | None
    horizon_days: int | None

    @property
    def label(self) -> str:
        return f"v{self.version}"

    def describe(self) -> str:
        model = "backtest model" if self.own_backtest else "served model (no backtest model)"
        return f"{self.label}: {model} trained to {self.cutoff.date()}"


@dataclass
class Comparison:
    """The two sides, the rows they were scored on, and the tables of metrics."""

    sides: tuple[Side, Side]
    cutoff: pd.Timestamp
    data_end: pd.Timestamp
    rows: int
    close: pd.DataFrame
    next_stage: pd.DataFrame | None
    notes: list[str] = field(default_factory=list)


def side(client, p, version: str) -> Side:
    """What ``version`` of the close model (and its partner) is scored with."""
    names, version = p.evaluate.model_names, str(version).removeprefix("v")
    try:
        close = client.get_model_version(names["close"], version)
        run = client.get_run(close.run_id)
        partner = close.tags.get(PAIR_TAG, NO_PARTNER)
        nxt = None if partner == NO_PARTNER else client.get_model_version(names["next_stage"],
                                                                            partner)  # fmt: skip
    except MlflowException:
        raise StepError(f"{names['close']} v{version} (or its next-stage partner) is not in "
                        "the registry; `dealcast models` lists the versions") from None  # fmt: skip
    own = close.tags.get(BACKTEST_MODEL_TAG)
    when = close.tags.get("backtest_cutoff") if own else close.tags.get("cutoff")
    horizon = run.data.params.get("train.horizon_days")
    return Side(
        version=version, close_uri=backtest_uri(close, names["close"]),
        next_uri=None if nxt is None else backtest_uri(nxt, names["next_stage"]),
        cutoff=pd.Timestamp(when), own_backtest=bool(own), spec=champion_spec(close, run),
        horizon_days=int(horizon) if horizon else None,
    )  # fmt: skip


def compare_versions(p, a: str, b: str, *, folder: Path) -> Comparison:
    """Score the pairs of close versions ``a`` and ``b`` on the test rows of the later
    backtest (rebuilt from the CRM in ``folder``); StepError when they cannot be."""
    client = MlflowClient()
    sides = side(client, p, a), side(client, p, b)
    newer = max(sides, key=lambda s: s.cutoff)
    horizons = {s.horizon_days for s in sides} - {None}
    if len(horizons) > 1:
        raise StepError(f"{sides[0].label} and {sides[1].label} predict different horizons "
                        f"({sorted(horizons)} days): their scores are not comparable")  # fmt: skip
    horizon = horizons.pop() if horizons else p.train.horizon_days
    prepared = prepare(folder, funnel=p.funnel.to_funnel(), features=p.features, train=p.train,
                       as_of=newer.cutoff, data=load_for(p, folder))  # fmt: skip
    dates = prepared.split.test
    if len(dates) == 0:
        raise StepError(f"no snapshot after {newer.cutoff.date()} in this CRM to score on")
    frames = {s.label: _rows(prepared, s, p, dates) for s in sides}
    features, labels = frames[newer.label]
    keys = [f[0][["deal_id", "as_of"]] for f in frames.values()]
    if not keys[0].equals(keys[1]):
        raise StepError("the two versions' feature settings give different test rows")
    watched = (labels["as_of"] + pd.Timedelta(days=horizon) <= prepared.data_end).to_numpy()
    won = labels[f"won_within_{horizon}d"].astype("boolean").where(watched).reset_index(drop=True)
    with no_progress_bar():
        close = {s.label: _scores(s.close_uri, frames[s.label][0])["p_win"] for s in sides}
        nxt = None
        if all(s.next_uri for s in sides) and "next_stage" in labels:
            truth = labels["next_stage"].astype("object").where(watched).reset_index(drop=True)
            nxt = compare_next_stage(truth, {s.label: _scores(s.next_uri, frames[s.label][0])
                                             for s in sides})  # fmt: skip
    table = compare_scores(won, close, ece_bins=p.evaluate.ece_bins)
    return Comparison(sides, newer.cutoff, prepared.data_end, len(features), table, nxt,
                      notes=_notes(sides, newer))  # fmt: skip


def _rows(prepared, s: Side, p, dates) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The test rows' features as ``s`` was trained to see them (its own feature settings,
    else params'), and their labels."""
    spec = s.spec or spec_of(p.features)
    built = build_feature_set(prepared.data, as_of_dates=dates, funnel=p.funnel.to_funnel(),
                              horizons_days=p.features.horizons_days, data_end=prepared.data_end,
                              **spec.build_kwargs())  # fmt: skip
    return built.features.reset_index(drop=True), built.labels.reset_index(drop=True)


def _scores(uri: str, features: pd.DataFrame) -> pd.DataFrame:
    try:
        return load_pyfunc(uri).predict(model_frame(features)).reset_index(drop=True)
    except MlflowException as exc:
        raise StepError(f"cannot load {uri}: {str(exc).splitlines()[0]}") from None


def _notes(sides: tuple[Side, Side], newer: Side) -> list[str]:
    """A side scored with its served model, trained after the rows began: it may have
    seen their outcomes, which flatters it."""
    return [
        f"{s.label} has no backtest model: its served model, trained to {s.cutoff.date()}, "
        f"may have seen the outcomes of these rows (after {newer.cutoff.date()})"
        for s in sides
        if not s.own_backtest and s.cutoff >= newer.cutoff
    ]
