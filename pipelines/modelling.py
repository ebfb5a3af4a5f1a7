"""The ``train`` and ``evaluate`` steps: load -> features -> split -> fit -> evaluate -> write.

``train`` fits the models as if today were the cutoff (``--as-of``, default the data's end;
:mod:`models.backtest` says what that means for the labels). ``evaluate`` trains the same
way, then scores every deal open at each later snapshot and compares with what happened
(:func:`models.backtest.score_test_window`); its default cutoff is chosen from the data
(:func:`models.splits.backtest_cutoff`). ``train`` also runs the revenue forecast's backtest
(:func:`run_forecast_backtest`) and writes it beside its own, so ``forecast`` never fits
anything. Neither writes a model to serve (what serves is the MLflow ``@champion`` that
``train`` registers); ``evaluate --out DIR`` writes the metrics, test predictions, drivers,
PNG charts and the backtest's own model (:func:`pipelines.catalog.evaluation_files`; the
writing is in :mod:`pipelines.modelling_artifacts`, the printed text in
:mod:`pipelines.modelling_report`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from crm.data import CRMData
from crm.schemas import Funnel
from features.history_start import history_start
from models import backtest
from models.backtest import Prepared
from models.backtest_report import guard_messages, no_labels_messages
from models.model_set import model_set
from models.splits import ShortHistoryError
from models.train import TrainingError
from pipelines.catalog import Catalog, model_folder
from pipelines.modelling_artifacts import write_evaluation, write_forecast_backtest, write_models
from pipelines.modelling_report import ForecastBacktest, ModellingRun
from pipelines.params import FeaturesParams, ForecastParams, Params, TrainParams
from pipelines.progress import step
from pipelines.steps import (
    StepError,
    as_utc,
    clock_of,
    data_end_of,
    fingerprint,
    load_usable,
    spec_of,
)
from serving.forecast_run import backtest_plan, empty_backtest, forecast_backtest

log = logging.getLogger(__name__)


def prepare(
    folder: Path,
    *,
    funnel: Funnel,
    features: FeaturesParams,
    train: TrainParams,
    as_of: pd.Timestamp | None,
    test_days: int | None = None,
    known_until: pd.Timestamp | None = None,
    data: CRMData | None = None,
) -> Prepared:
    """Load and validate the CRM (unless ``data`` is given) and build the training snapshots
    at the cutoff (:func:`models.backtest.prepare`). ``known_until`` pretends the data was
    extracted then: nothing later counts as known, not even for test labels."""
    if train.horizon_days not in features.horizons_days:
        raise StepError(
            f"train.horizon_days {train.horizon_days} is not one of features.horizons_days "
            f"{list(features.horizons_days)}"
        )
    if data is None:
        data = load_usable(folder, funnel=funnel, data_end=None, clock=clock_of(None))
    data_end = data_end_of(data, data_end=features.data_end)
    data_end = data_end if known_until is None else min(data_end, known_until)
    start = as_utc(features.start) if features.start else None
    history = history_start(data.deals, start=start, after_late_wins=features.start_after_late_wins)
    if history.note:
        log.warning(history.note)
    try:
        prepared = backtest.prepare(
            data, history=history, data_end=data_end, as_of=as_of, test_days=test_days,
            funnel=funnel, spec=spec_of(features), horizons_days=features.horizons_days,
            horizon_days=train.horizon_days, calibration_fraction=train.calibration_fraction,
            fingerprint=fingerprint(data),
        )  # fmt: skip
    except (ShortHistoryError, backtest.BacktestError) as exc:
        raise StepError(str(exc)) from None
    n_dates = int((prepared.dates <= prepared.cutoff).sum())
    log.debug("cutoff %s: %d training snapshot dates", prepared.cutoff.date(), n_dates)
    return prepared


def estimators(train: TrainParams, *, states: tuple[str, ...], seed: int) -> dict:
    """Unfitted estimators with every setting from ``params.yaml``."""
    return model_set(states=states, seed=seed, **train.model_dump(exclude={"explain_top_n"}))


def fit_close_at(
    data: CRMData,
    *,
    cutoff: pd.Timestamp,
    funnel: Funnel,
    features: FeaturesParams,
    train: TrainParams,
    seed: int,
):
    """The close model alone, fitted as if today were ``cutoff`` (the forecast backtest's
    model: nothing else is needed there, so nothing else is fitted); ``StepError`` if it
    cannot be."""
    prepared = prepare(
        Path("."), funnel=funnel, features=features, train=train, as_of=cutoff,
        known_until=cutoff, data=data,
    )  # fmt: skip
    close = estimators(train, states=funnel.states, seed=seed)["close"]
    try:
        return close.fit(
            prepared.train.features, prepared.train.labels, score_X=prepared.score_features
        )
    except (TrainingError, ValueError) as exc:
        raise StepError(str(exc)) from None


def run_train(
    *,
    folder: Path,
    funnel: Funnel,
    features: FeaturesParams,
    train: TrainParams,
    seed: int,
    artifacts: Path | None,
    as_of: pd.Timestamp | None,
    test_days: int | None = None,
    known_until: pd.Timestamp | None = None,
    data: CRMData | None = None,
) -> ModellingRun:
    """Fit at the cutoff; raise ``StepError`` on unusable data. With ``artifacts``, write
    the model file there (a backtest's own model, beside its report: never served; what
    serves is the MLflow ``@champion``). ``data``, when given, is the already validated CRM
    of ``folder`` (not read again)."""
    prepared = prepare(folder, funnel=funnel, features=features, train=train, as_of=as_of,
                       test_days=test_days, known_until=known_until, data=data)  # fmt: skip
    try:
        made = estimators(train, states=funnel.states, seed=seed)
        models = backtest.fit(prepared, horizon_days=train.horizon_days, estimators=made)
    except TrainingError as exc:
        raise StepError(str(exc)) from None
    summary = backtest.training_summary(prepared, models, horizon_days=train.horizon_days)
    run = ModellingRun(prepared, models, summary, messages=guard_messages(models))
    if artifacts is not None:
        run.files |= write_models(artifacts, models)
    return run


def run_evaluate(
    *,
    folder: Path,
    funnel: Funnel,
    features: FeaturesParams,
    train: TrainParams,
    seed: int,
    as_of: pd.Timestamp | None,
    test_days: int,
    out: Path | None,
    ece_bins: int,
    artifacts: Path | None = None,
    known_until: pd.Timestamp | None = None,
    data: CRMData | None = None,
) -> ModellingRun:
    """Train at ``as_of`` (default: a cutoff chosen from the data), score the later
    snapshots, measure, and write ``out`` (the report and, in its ``model/`` folder or
    ``artifacts``, the backtest's model; a backtest model never serves)."""
    run = run_train(
        folder=folder, funnel=funnel, features=features, train=train, seed=seed,
        artifacts=artifacts or (None if out is None else model_folder(out)), as_of=as_of,
        test_days=test_days, known_until=known_until, data=data,
    )  # fmt: skip
    try:
        tested = backtest.score_test_window(
            run.prepared, run.models, funnel=funnel, spec=spec_of(features), ece_bins=ece_bins,
            horizons_days=features.horizons_days, horizon_days=train.horizon_days,
        )  # fmt: skip
    except backtest.BacktestError as exc:
        raise StepError(str(exc)) from None
    run.models, run.predictions = tested.models, tested.predictions
    run.test_features = tested.features
    run.metrics = run.summary | tested.metrics
    run.messages += no_labels_messages(run.metrics)
    if out is not None:
        run.files |= write_evaluation(Path(out), run, tested.features, train, ece_bins=ece_bins)
    return run


def run_train_with_backtest(
    p: Params, *, folder: Path, data: CRMData, as_of: pd.Timestamp | None
) -> tuple[ModellingRun, ModellingRun | None]:
    """``train``'s fits under params ``p``: the model to serve, fitted on everything known at
    ``as_of`` (default: the data's end), and the backtest of the same settings (trained
    ``horizon + test_days`` before, tested on the snapshots after that with only what was
    known at ``as_of``) that decides whether it may serve: ``None`` when the data is too
    short (the reason is in the final run's messages). Then the revenue forecast's backtest
    (:func:`run_forecast_backtest`); both backtests are written into train's backtest
    folder. ``data`` is the validated CRM of ``folder``."""
    out = Catalog(p.paths).backtest
    common = {"folder": folder, "funnel": p.funnel.to_funnel(), "features": p.features,
              "train": p.train, "seed": p.base.seed, "data": data}  # fmt: skip
    tested, reason = None, ""
    try:
        with step("backtested these settings (decides promotion)") as done:
            tested = run_evaluate(**common, as_of=None, test_days=p.evaluate.test_days, out=out,
                                  ece_bins=p.evaluate.ece_bins, known_until=as_of)  # fmt: skip
            done.detail = f"trained at {tested.prepared.cutoff.date()}, tested after"
    except StepError as exc:
        reason = f"no backtest, so no champion gate: {str(exc).splitlines()[0]}"
    with step("fitted the model to serve") as done:
        final = run_train(**common, artifacts=None, as_of=as_of)
        done.detail = f"trained at {final.prepared.cutoff.date()}"
    final.messages += [reason] if reason else []
    with step("backtested the revenue forecast"):
        made = run_forecast_backtest(data, funnel=common["funnel"], features=p.features,
                                     train=p.train, forecast=p.forecast, seed=p.base.seed,
                                     as_of=as_of)  # fmt: skip
    made.files = write_forecast_backtest(out, made)
    final.forecast_backtest, final.files = made, final.files | made.files
    return final, tested


def run_forecast_backtest(
    data: CRMData,
    *,
    funnel: Funnel,
    features: FeaturesParams,
    train: TrainParams,
    forecast: ForecastParams,
    seed: int,
    as_of: pd.Timestamp | None = None,
) -> ForecastBacktest:
    """The revenue forecast's backtest (:func:`serving.forecast_run.forecast_backtest`) with
    a close model of the training settings fitted at the cutoff ``forecast.backtest_months``
    before the data's end (or ``as_of``, if earlier). Never raises for a short history (the
    messages say why it is empty); the metrics record the data fingerprint and end."""
    data_end = data_end_of(data, data_end=features.data_end)
    data_end = data_end if as_of is None else min(data_end, as_of)
    record = {"data_fingerprint": fingerprint(data), "data_end": str(data_end),
              "horizon_days": train.horizon_days}  # fmt: skip
    cutoff, plan = backtest_plan(data_end, months=forecast.backtest_months)
    if not plan:
        why = "no whole month after the backtest cutoff"
        return ForecastBacktest(empty_backtest(), record, [f"no forecast backtest: {why}"])

    def fit(at: pd.Timestamp):
        return fit_close_at(data, cutoff=at, funnel=funnel, features=features, train=train,
                            seed=seed)  # fmt: skip

    try:
        rows, metrics = forecast_backtest(
            data, fit_close=fit, cutoff=cutoff, refit_months=forecast.backtest_refit_months,
            plan=plan, funnel=funnel, spec=spec_of(features), horizon_days=train.horizon_days,
            draws=forecast.draws, seed=seed, min_stage_wins=forecast.min_stage_wins,
            new_deal_origins=forecast.new_deal_origins,
            stage_prior_strength=forecast.stage_prior_strength,
            calendar_prior_days=forecast.calendar_prior_days,
        )  # fmt: skip
    except StepError as exc:
        why = str(exc).splitlines()[0]
        return ForecastBacktest(empty_backtest(), record, [f"no forecast backtest: {why}"])
    return ForecastBacktest(rows, metrics | record)
