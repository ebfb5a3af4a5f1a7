"""The ``train`` and ``evaluate`` steps: load -> features -> split -> fit -> evaluate -> write.

``train`` fits the models as if today were the cutoff (``--as-of``, default the data's end):
every snapshot up to the cutoff is labelled with ``data_end = cutoff``, so a deal closed
after the cutoff is open for training purposes (the hazard model uses each interval once it
is fully observed; the fixed-horizon baselines only snapshots with ``as_of + H <= cutoff``).
``evaluate`` trains the same way, then scores every deal open at each later snapshot and
compares with what happened (see :mod:`models.evaluate`); its default cutoff is chosen
from the data (:func:`models.splits.backtest_cutoff`). ``train`` also runs the revenue
forecast's backtest (:func:`run_forecast_backtest`) and writes it beside its own, so
``forecast`` never fits anything. Neither writes a model to serve
(what serves is the MLflow ``@champion`` that ``train`` registers); ``evaluate --out DIR``
writes the metrics, test predictions, drivers, PNG charts and the backtest's own model
(:func:`pipelines.catalog.evaluation_files`; the writing is in
:mod:`pipelines.modelling_artifacts`, the summary and printed text in
:mod:`pipelines.modelling_report`).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import pandas as pd

from crm.data import CRMData
from crm.schemas import LOST, WON, Funnel
from pipelines.catalog import model_folder
from pipelines.modelling_artifacts import (
    write_evaluation,
    write_forecast_backtest,
    write_models,
)
from pipelines.modelling_report import (  # noqa: F401 - ModellingRun, Prepared re-exported
    DEFINITIONS,
    ForecastBacktest,
    ModellingRun,
    Prepared,
    guard_messages,
    run_summary,
    warn_if_no_labels,
    window_summary,
)
from pipelines.params import FeaturesParams, ForecastParams, TrainParams
from pipelines.steps import as_utc, data_end_of, fingerprint

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
    """Load and validate the CRM and build the training snapshots at the cutoff.

    The cutoff is ``as_of`` (capped at the data's end), or without it the data's end
    (training "today"), or with ``test_days`` the backtest cutoff chosen from the data
    (room for a test window whose outcomes are known). ``known_until`` pretends the data
    was extracted then: nothing later counts as known, not even for test labels. Training
    snapshots older than a trimmed history's start enter late
    (:func:`features.history_start.delayed_entry`).
    """
    from features.build import build_feature_set
    from features.history_start import delayed_entry, history_start
    from features.snapshots import snapshot_dates
    from models.splits import ShortHistoryError, backtest_cutoff, time_split
    from pipelines.steps import StepError

    if train.horizon_days not in features.horizons_days:
        raise StepError(
            f"train.horizon_days {train.horizon_days} is not one of features.horizons_days "
            f"{list(features.horizons_days)}"
        )
    if data is None:
        data = load_usable(folder, funnel=funnel)
    data_end = data_end_of(data, data_end=features.data_end)
    if known_until is not None:
        data_end = min(data_end, known_until)
    history = history_start(
        data.deals,
        start=as_utc(features.start) if features.start else None,
        after_late_wins=features.start_after_late_wins,
    )
    start, note = history.start, history.note
    if note:
        log.warning(note)
    dates = snapshot_dates(start, data_end, features.freq)
    dates = dates[dates <= data_end]
    # nothing after data_end is in the data, so a later --as-of is data_end for labels
    if as_of is not None:
        cutoff = min(as_of, data_end)
    elif test_days is None:
        cutoff = data_end
    else:
        deals = data.deals
        closed = deals["closed_at"].where(deals["closed_at"] <= data_end)
        try:
            cutoff = backtest_cutoff(
                dates, data_end=data_end, horizon_days=train.horizon_days, test_days=test_days,
                won_at=closed[deals["outcome"].eq(WON).fillna(False).to_numpy()],
                lost_at=closed[deals["outcome"].eq(LOST).fillna(False).to_numpy()],
            )  # fmt: skip
        except ShortHistoryError as exc:
            raise StepError(str(exc)) from None
    split = time_split(
        dates,
        cutoff=cutoff,
        horizon_days=train.horizon_days,
        calibration_fraction=train.calibration_fraction,
    )
    train_dates = dates[dates <= cutoff]
    if len(train_dates) == 0:
        raise StepError(
            f"no snapshot date on or before the cutoff {cutoff.date()}: the history starts "
            f"{start.date()}{' (' + note.split(':')[0] + ')' if note else ''}; choose a "
            "later --as-of"
        )
    log.info("cutoff %s: %d training snapshot dates", cutoff.date(), len(train_dates))
    train_dates = history.training_dates(train_dates, freq=features.freq)  # + delayed entry
    kwargs = _feature_kwargs(funnel, features)
    built = build_feature_set(data, as_of_dates=train_dates, data_end=cutoff, **kwargs)
    built = replace(built, labels=delayed_entry(built.labels, start=start))
    now = build_feature_set(
        data, as_of_dates=pd.DatetimeIndex([cutoff]), data_end=cutoff, **kwargs
    ).features
    return Prepared(data, data_end, cutoff, dates, split, built, fingerprint(data), now)


def load_usable(folder: Path, *, funnel: Funnel) -> CRMData:
    """The validated CRM of ``folder``; ``StepError`` with the report if it is not usable."""
    from pipelines.steps import StepError, load_and_validate

    result = load_and_validate(folder, funnel=funnel, as_of=None)
    if result.data is None:
        raise StepError(f"{folder}: the CRM data is not usable\n{result.report.to_text()}")
    return result.data


def _feature_kwargs(funnel: Funnel, features: FeaturesParams) -> dict:
    return {
        "funnel": funnel,
        "windows_days": features.windows_days,
        "trend_days": features.trend_days,
        "recency_channels": features.recency_channels,
        "prior_strength": features.prior_strength,
        "horizons_days": features.horizons_days,
    }


def estimators(train: TrainParams, *, states: tuple[str, ...], seed: int) -> dict:
    """Unfitted estimators with every setting from ``params.yaml``."""
    from models.baselines import LogisticBaseline, StageRateTable
    from models.close_probability import CloseProbabilityModel
    from models.hazard import HazardCloseModel
    from models.next_stage import NextStageModel

    c, n = train.close, train.next_stage
    shared = {
        "stage_prior_strength": train.stage_prior_strength,
        "blend_weights": train.blend_weights,
        "guard_z": train.guard_z,
        "probability_floor": train.probability_floor,
        "n_jobs": train.n_jobs,
        "random_state": seed,
    }
    return {
        "close": HazardCloseModel(
            **c.model_dump(),
            **train.hazard.model_dump(),
            **shared,
            horizon_days=train.horizon_days,
            drift_max=train.drift_max,
        ),
        "fixed_horizon": CloseProbabilityModel(
            **c.model_dump(),
            **shared,
            calibration_fraction=train.calibration_fraction,
            calibration=train.calibration,
            min_isotonic_rows=train.min_isotonic_rows,
        ),
        "stage_rate": StageRateTable(prior_strength=train.stage_prior_strength),
        "logreg": LogisticBaseline(C=train.logreg_c, random_state=seed),
        "next_stage": NextStageModel(
            states=states,
            **n.model_dump(),
            calibration_fraction=train.calibration_fraction,
            blend_weights=train.blend_weights,
            guard_z=train.guard_z,
            random_state=seed,
        ),
    }


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
    from models.train import TrainingError
    from pipelines.steps import StepError

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
    serves is the MLflow ``@champion``).

    ``data``, when given, is the already validated CRM of ``folder`` (not read again)."""
    from models.train import TrainingError, fit_models, next_stage_coverage
    from pipelines.steps import StepError

    prepared = prepare(
        folder,
        funnel=funnel,
        features=features,
        train=train,
        as_of=as_of,
        test_days=test_days,
        known_until=known_until,
        data=data,
    )
    try:
        models = fit_models(
            prepared.train.features,
            prepared.train.labels,
            horizon_days=train.horizon_days,
            cutoff=prepared.cutoff,
            score_features=prepared.score_features,
            **estimators(train, states=funnel.states, seed=seed),
        )
    except TrainingError as exc:
        raise StepError(str(exc)) from None
    summary = run_summary(prepared, models, train.horizon_days)
    summary["next_stage_coverage"] = next_stage_coverage(prepared.train.labels)
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
    """Train at ``as_of``, score the later snapshots, measure, and write ``out`` (the
    report and, in its ``model/`` folder or ``artifacts`` if given, the backtest's model;
    without either nothing is written: a backtest model never serves).

    Without ``as_of`` the cutoff is ``horizon_days + test_days`` before the data's end, so
    the test window holds ``test_days`` of snapshots whose outcomes are known; on a history
    too short for that, the cutoff moves later and the test window shrinks
    (:func:`models.splits.backtest_cutoff`).
    """
    from features.build import build_feature_set
    from models.evaluate import prediction_frame
    from models.train import refit_for_drift
    from pipelines.steps import StepError

    run = run_train(
        folder=folder, funnel=funnel, features=features, train=train, seed=seed,
        artifacts=artifacts or (None if out is None else model_folder(out)), as_of=as_of,
        test_days=test_days, known_until=known_until, data=data,
    )  # fmt: skip
    p = run.prepared
    if len(p.split.test) == 0:
        raise StepError(f"no snapshot after the cutoff {p.cutoff.date()} to test on")
    test = build_feature_set(
        p.data, as_of_dates=p.split.test, data_end=p.data_end, **_feature_kwargs(funnel, features)
    )
    refit = refit_for_drift(run.models.close, p.train.features, p.train.labels, test.features)
    if refit is not None:
        run.models = replace(run.models, close_refit=refit)
    pred = prediction_frame(
        test.features, test.labels, run.models, horizon_days=train.horizon_days,
        data_end=p.data_end,
    )  # fmt: skip
    run.predictions, run.test_features = pred, test.features
    run.metrics = run.summary | _test_metrics(p.split.test, pred, ece_bins=ece_bins)
    warn_if_no_labels(run)
    if out is not None:
        run.files |= write_evaluation(Path(out), run, test.features, train, ece_bins=ece_bins)
    return run


def _test_metrics(dates: pd.DatetimeIndex, pred: pd.DataFrame, *, ece_bins: int) -> dict:
    """Every metric of the test window's predictions, and how each is defined."""
    from models.evaluate import (
        censoring_bias,
        close_metric_table,
        next_stage_metric_table,
    )

    return {
        "test_window": window_summary(dates, pred),
        "close_probability": close_metric_table(pred),
        "next_stage": next_stage_metric_table(pred),
        "censoring": censoring_bias(pred),
        "definitions": DEFINITIONS | {"ece_bins": ece_bins},
    }


def run_train_with_backtest(
    *,
    folder: Path,
    funnel: Funnel,
    features: FeaturesParams,
    train: TrainParams,
    seed: int,
    as_of: pd.Timestamp | None,
    test_days: int,
    ece_bins: int,
    backtest_out: Path,
    data: CRMData | None = None,
    forecast: ForecastParams | None = None,
) -> tuple[ModellingRun, ModellingRun | None]:
    """The model to serve, fitted on everything known at ``as_of`` (default: the data's
    end), and the backtest of the same settings that decides whether it may serve.

    The backtest trains ``horizon + test_days`` before ``as_of`` and tests on the snapshots
    after that, with only what was known at ``as_of``. ``None`` when the data is too
    short for a backtest (the reason is in the final run's messages). With ``forecast``
    the revenue forecast's backtest runs too (:func:`run_forecast_backtest`), is written
    into ``backtest_out`` and kept as the final run's ``forecast_backtest``.
    """
    from pipelines.steps import StepError

    if data is None:
        data = load_usable(folder, funnel=funnel)
    backtest, reason = None, ""
    try:
        backtest = run_evaluate(
            folder=folder, funnel=funnel, features=features, train=train, seed=seed,
            as_of=None, test_days=test_days, out=backtest_out, ece_bins=ece_bins,
            known_until=as_of, data=data,
        )  # fmt: skip
    except StepError as exc:
        reason = f"no backtest, so no champion gate: {str(exc).splitlines()[0]}"
    final = run_train(
        folder=folder, funnel=funnel, features=features, train=train, seed=seed,
        artifacts=None, as_of=as_of, data=data,
    )  # fmt: skip
    if reason:
        final.messages.append(reason)
    if forecast is not None:
        made = run_forecast_backtest(data, funnel=funnel, features=features, train=train,
                                     forecast=forecast, seed=seed, as_of=as_of)  # fmt: skip
        made.files = write_forecast_backtest(backtest_out, made)
        final.forecast_backtest, final.files = made, final.files | made.files
    return final, backtest


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
    from pipelines.steps import StepError, spec_of
    from serving.forecast_run import backtest_plan, empty_backtest, forecast_backtest

    data_end = data_end_of(data, data_end=features.data_end)
    data_end = data_end if as_of is None else min(data_end, as_of)
    record = {"data_fingerprint": fingerprint(data), "data_end": str(data_end),
              "horizon_days": train.horizon_days}  # fmt: skip
    cutoff, plan = backtest_plan(data_end, months=forecast.backtest_months)
    if not plan:
        why = "no whole month after the backtest cutoff"
        return ForecastBacktest(empty_backtest(), record, [f"no forecast backtest: {why}"])
    try:
        close = fit_close_at(
            data, cutoff=cutoff, funnel=funnel, features=features, train=train, seed=seed
        )
    except StepError as exc:
        why = str(exc).splitlines()[0]
        return ForecastBacktest(empty_backtest(), record, [f"no forecast backtest: {why}"])
    rows, metrics = forecast_backtest(
        data, close=close, cutoff=cutoff, plan=plan, funnel=funnel, spec=spec_of(features),
        horizon_days=train.horizon_days, draws=forecast.draws, seed=seed,
        min_stage_wins=forecast.min_stage_wins, new_deal_origins=forecast.new_deal_origins,
        stage_prior_strength=forecast.stage_prior_strength,
        calendar_prior_days=forecast.calendar_prior_days,
    )  # fmt: skip
    return ForecastBacktest(rows, metrics | record)
