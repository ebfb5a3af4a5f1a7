"""The backtest orchestration: cutoff -> snapshot dates -> split -> features -> fit -> predict.

Pure: a validated CRM and explicit settings in, frames and fitted models out; nothing is
read or written here and no params dict is seen. The shell (:mod:`pipelines.modelling`)
loads the CRM, turns ``params.yaml`` into these arguments, logs and writes what comes back.

Training "as if today were the cutoff": every snapshot up to the cutoff is labelled with
``data_end = cutoff``, so a deal closed after the cutoff is open for training purposes.
Testing scores every deal open at each later snapshot, labelled with what the data knows
(``data_end``), and compares (:mod:`models.evaluate`; the summaries are
:mod:`models.backtest_report`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial

import pandas as pd

from crm.data import CRMData
from crm.schemas import LOST, WON, Funnel
from features.build import FeatureSet, build_feature_set
from features.history_start import HistoryStart, delayed_entry
from features.snapshots import snapshot_dates
from features.spec import FeatureSpec
from models.backtest_report import backtest_metrics
from models.evaluate import FittedModels, prediction_frame
from models.splits import TimeSplit, backtest_cutoff, time_split
from models.train import fit_models, next_stage_coverage, refit_for_drift


class BacktestError(ValueError):
    """The data cannot support the cutoff asked for; the message says what to change."""


@dataclass(frozen=True)
class Prepared:
    """The CRM, its cutoff and the training snapshots with labels known at the cutoff;
    ``score_features`` is the snapshot at the cutoff (the rows the models will score)."""

    data: CRMData
    data_end: pd.Timestamp
    cutoff: pd.Timestamp
    dates: pd.DatetimeIndex
    split: TimeSplit
    train: FeatureSet
    fingerprint: str
    score_features: pd.DataFrame | None = None


@dataclass(frozen=True)
class Tested:
    """The test window: the models that scored it (with a drift refit, if one was needed),
    the predictions, the test features and the test metrics."""

    models: FittedModels
    predictions: pd.DataFrame
    features: pd.DataFrame
    metrics: dict


def choose_cutoff(
    data: CRMData,
    dates: pd.DatetimeIndex,
    *,
    data_end: pd.Timestamp,
    as_of: pd.Timestamp | None,
    test_days: int | None,
    horizon_days: int,
) -> pd.Timestamp:
    """``as_of`` capped at ``data_end``; without it ``data_end`` (training "today"), or with
    ``test_days`` the backtest cutoff chosen from the data (room for a test window whose
    outcomes are known; :class:`models.splits.ShortHistoryError` when there is none)."""
    if as_of is not None:  # nothing after data_end is in the data: a later as_of is data_end
        return min(as_of, data_end)
    if test_days is None:
        return data_end
    deals = data.deals
    closed = deals["closed_at"].where(deals["closed_at"] <= data_end)
    return backtest_cutoff(
        dates, data_end=data_end, horizon_days=horizon_days, test_days=test_days,
        won_at=closed[deals["outcome"].eq(WON).fillna(False).to_numpy()],
        lost_at=closed[deals["outcome"].eq(LOST).fillna(False).to_numpy()],
    )  # fmt: skip


def prepare(
    data: CRMData,
    *,
    history: HistoryStart,
    data_end: pd.Timestamp,
    as_of: pd.Timestamp | None,
    test_days: int | None,
    funnel: Funnel,
    spec: FeatureSpec,
    horizons_days: tuple[int, ...],
    horizon_days: int,
    calibration_fraction: float,
    fingerprint: str,
) -> Prepared:
    """The training snapshots at the cutoff (:func:`choose_cutoff`) from ``history.start``,
    snapshots older than a trimmed history's start entering late
    (:func:`features.history_start.delayed_entry`), and the snapshot at the cutoff.
    ``BacktestError`` when no snapshot date is on or before the cutoff."""
    dates = snapshot_dates(history.start, data_end, spec.freq)
    dates = dates[dates <= data_end]
    cutoff = choose_cutoff(data, dates, data_end=data_end, as_of=as_of, test_days=test_days,
                           horizon_days=horizon_days)  # fmt: skip
    split = time_split(dates, cutoff=cutoff, horizon_days=horizon_days,
                       calibration_fraction=calibration_fraction)  # fmt: skip
    train_dates = dates[dates <= cutoff]
    if len(train_dates) == 0:
        note = f" ({history.note.split(':')[0]})" if history.note else ""
        raise BacktestError(
            f"no snapshot date on or before the cutoff {cutoff.date()}: the history starts "
            f"{history.start.date()}{note}; choose a later --as-of"
        )
    build = partial(build_feature_set, data, funnel=funnel, horizons_days=horizons_days,
                    data_end=cutoff, **spec.build_kwargs())  # fmt: skip
    built = build(as_of_dates=history.training_dates(train_dates, freq=spec.freq))
    built = replace(built, labels=delayed_entry(built.labels, start=history.start))
    now = build(as_of_dates=pd.DatetimeIndex([cutoff])).features
    return Prepared(data, data_end, cutoff, dates, split, built, fingerprint, now)


def fit(prepared: Prepared, *, horizon_days: int, estimators: dict) -> FittedModels:
    """Every model of ``estimators`` (unfitted, :func:`models.train.fit_models`' keyword
    arguments) fitted on the training snapshots; ``TrainingError`` if they cannot be."""
    return fit_models(
        prepared.train.features, prepared.train.labels, horizon_days=horizon_days,
        cutoff=prepared.cutoff, score_features=prepared.score_features, **estimators,
    )  # fmt: skip


def score_test_window(
    prepared: Prepared,
    models: FittedModels,
    *,
    funnel: Funnel,
    spec: FeatureSpec,
    horizons_days: tuple[int, ...],
    horizon_days: int,
    ece_bins: int,
) -> Tested:
    """Score every deal open at each snapshot after the cutoff and measure against what
    ``data_end`` knows; the close model is refitted without the features that drifted at
    the test dates (:func:`models.train.refit_for_drift`). ``BacktestError`` when no
    snapshot follows the cutoff."""
    p = prepared
    if len(p.split.test) == 0:
        raise BacktestError(f"no snapshot after the cutoff {p.cutoff.date()} to test on")
    test = build_feature_set(p.data, as_of_dates=p.split.test, data_end=p.data_end,
                             funnel=funnel, horizons_days=horizons_days,
                             **spec.build_kwargs())  # fmt: skip
    refit = refit_for_drift(models.close, p.train.features, p.train.labels, test.features)
    if refit is not None:
        models = replace(models, close_refit=refit)
    pred = prediction_frame(test.features, test.labels, models, horizon_days=horizon_days,
                            data_end=p.data_end)  # fmt: skip
    metrics = backtest_metrics(p.split.test, pred, ece_bins=ece_bins)
    return Tested(models, pred, test.features, metrics)


def training_summary(prepared: Prepared, models: FittedModels, *, horizon_days: int) -> dict:
    """What was trained on: cutoff, data end and fingerprint, training rows, the guards,
    drift and the share of snapshots the next-stage model could not learn from."""
    close, nxt, fixed = models.close, models.next_stage, models.fixed_horizon
    as_of = prepared.train.features["as_of"]
    return {
        "cutoff": str(prepared.cutoff),
        "data_end": str(prepared.data_end),
        "horizon_days": horizon_days,
        "data_fingerprint": prepared.fingerprint,
        "training": close.training_ | {
            "rows": len(prepared.train.features),
            "dates": [str(as_of.min()), str(as_of.max())] if len(as_of) else [],
            "fixed_horizon_rows": sum(models.stage_rate.counts_.values()) if fixed else 0,
            "positive_rate": getattr(models.base_rate, "rate_", None),
        },
        "close_guard": close.guard_ | {"model_weight": close.weight_},
        "drift": close.drift_,
        "fixed_horizon_guard": (fixed.guard_ | {"model_weight": fixed.weight_}) if fixed else None,
        "next_stage_guard": (nxt.guard_ | {"model_weight": nxt.weight_}) if nxt else None,
        "next_stage_coverage": next_stage_coverage(prepared.train.labels),
    }  # fmt: skip
