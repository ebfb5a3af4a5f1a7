"""Shared model-test data: small generated CRMs split at a cutoff, and test-size estimators."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from crm.data import CRMData
from crm.schemas import Funnel
from crm.synthetic import generate_crm
from features.build import FeatureSet, build_feature_set
from features.snapshots import latest_timestamp, snapshot_dates
from models.baselines import LogisticBaseline
from models.close_probability import CloseProbabilityModel
from models.hazard import HazardCloseModel
from models.next_stage import NextStageModel
from models.splits import TimeSplit, time_split
from tests.shared import FUNNEL

HORIZON = 180
CUTOFF = pd.Timestamp("2025-10-06", tz="UTC")
FEATURE_SETTINGS = {
    "windows_days": (7, 30, 90),
    "trend_days": 30,
    "recency_channels": ("meeting", "demo"),
    "prior_strength": 20.0,
    "horizons_days": (90, HORIZON),
}
WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)


def close_model(**overrides) -> CloseProbabilityModel:
    settings = {
        "n_estimators": 60,
        "learning_rate": 0.1,
        "num_leaves": 15,
        "min_child_samples": 40,
        "reg_lambda": 1.0,
        "colsample_bytree": 0.8,
        "early_stopping_rounds": 10,
        "calibration_fraction": 0.2,
        "calibration": "sigmoid",
        "min_isotonic_rows": 1000,
        "stage_prior_strength": 20.0,
        "blend_weights": WEIGHTS,
        "guard_z": 2.0,
        "probability_floor": 0.005,
        "n_jobs": 1,
        "random_state": 0,
    }
    return CloseProbabilityModel(**(settings | overrides))


def hazard_model(**overrides) -> HazardCloseModel:
    settings = {
        "horizon_days": HORIZON,
        "edges_days": (7, 14, 28, 56, 91, 135, 180, 270, 365),
        "folds": 3,
        "n_estimators": 60,
        "learning_rate": 0.1,
        "num_leaves": 15,
        "min_child_samples": 40,
        "reg_lambda": 1.0,
        "colsample_bytree": 0.8,
        "early_stopping_rounds": 10,
        "stage_prior_strength": 20.0,
        "blend_weights": WEIGHTS,
        "guard_z": 2.0,
        "recalibration_days": 91,
        "recalibration_prior": 100.0,
        "probability_floor": 0.005,
        "drift_max": 0.25,
        "n_jobs": 1,
        "random_state": 0,
    }
    return HazardCloseModel(**(settings | overrides))


def next_model(states: tuple[str, ...] = FUNNEL.states) -> NextStageModel:
    return NextStageModel(
        states=states,
        n_estimators=40,
        learning_rate=0.1,
        num_leaves=15,
        min_child_samples=40,
        reg_lambda=1.0,
        early_stopping_rounds=10,
        calibration_fraction=0.2,
        alpha=1.0,
        blend_weights=WEIGHTS,
        guard_z=2.0,
        floor=1e-4,
        random_state=0,
    )


def logreg() -> LogisticBaseline:
    return LogisticBaseline(C=0.1, random_state=0)


@dataclass(frozen=True)
class Backtest:
    data: CRMData
    truth: pd.DataFrame
    split: TimeSplit
    train: FeatureSet
    test: FeatureSet
    data_end: pd.Timestamp
    train_all: FeatureSet  # every snapshot up to the cutoff (the hazard model's rows)
    now: FeatureSet  # the snapshot at the cutoff (the rows a model trained then scores)


def backtest(data: CRMData, truth: pd.DataFrame, funnel: Funnel = FUNNEL) -> Backtest:
    data_end = latest_timestamp(data)
    dates = snapshot_dates(data.deals["created_at"].min(), data_end, "W-MON")
    split = time_split(dates, cutoff=CUTOFF, horizon_days=HORIZON, calibration_fraction=0.2)
    train = build_feature_set(
        data, as_of_dates=split.training, funnel=funnel, data_end=CUTOFF, **FEATURE_SETTINGS
    )
    test = build_feature_set(
        data, as_of_dates=split.test, funnel=funnel, data_end=data_end, **FEATURE_SETTINGS
    )
    every = build_feature_set(
        data, as_of_dates=dates[dates <= CUTOFF], funnel=funnel, data_end=CUTOFF,
        **FEATURE_SETTINGS,
    )  # fmt: skip
    now = build_feature_set(
        data, as_of_dates=pd.DatetimeIndex([CUTOFF]), funnel=funnel, data_end=CUTOFF,
        **FEATURE_SETTINGS,
    )  # fmt: skip
    return Backtest(data, truth, split, train, test, data_end, every, now)


def generated(n_deals: int, seed: int, funnel: Funnel = FUNNEL):
    crm = generate_crm(
        n_deals=n_deals,
        seed=seed,
        start=pd.Timestamp("2024-01-01", tz="UTC"),
        as_of=pd.Timestamp("2026-06-30", tz="UTC"),
        funnel=funnel,
        messy=False,
    )
    return crm.data, crm.truth


@pytest.fixture(scope="session")
def small_backtest() -> Backtest:
    """1,500 generated deals, cut at 2025-10-06."""
    return backtest(*generated(1500, seed=7))


@pytest.fixture(scope="session")
def fitted_close(small_backtest: Backtest) -> CloseProbabilityModel:
    labels = small_backtest.train.labels[f"won_within_{HORIZON}d"]
    known = labels.notna().to_numpy()
    return close_model().fit(
        small_backtest.train.features[known].reset_index(drop=True), labels[known].to_numpy(bool)
    )


def fit_all(bt: Backtest, **overrides):
    """Every model of ``fit_models`` on a backtest's rows (test-size settings)."""
    from models.baselines import StageRateTable
    from models.train import fit_models

    settings = {
        "close": hazard_model(),
        "fixed_horizon": close_model(),
        "stage_rate": StageRateTable(prior_strength=20.0),
        "logreg": logreg(),
        "next_stage": next_model(),
    }
    return fit_models(
        bt.train_all.features, bt.train_all.labels, horizon_days=HORIZON, cutoff=CUTOFF,
        score_features=bt.now.features, **(settings | overrides),
    )  # fmt: skip


@pytest.fixture(scope="session")
def fitted_models(small_backtest: Backtest):
    return fit_all(small_backtest)


def labels_frame(outcome, days_to_close, days_observed) -> pd.DataFrame:
    """Hazard-model labels by hand: outcome (None = open), days to close, days watched."""
    return pd.DataFrame(
        {
            "outcome": pd.array(outcome, dtype="str"),
            "days_to_close": np.array(days_to_close, float),
            "days_observed": np.array(days_observed, float),
        }
    )
