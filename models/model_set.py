"""The unfitted model set a training fits: the served close (hazard) and next-stage models
and the baselines they are measured against (:func:`models.backtest.fit` takes it)."""

from __future__ import annotations

from collections.abc import Mapping

from models.baselines import LogisticBaseline, StageRateTable
from models.close_probability import CloseProbabilityModel
from models.hazard import HazardCloseModel
from models.next_stage import NextStageModel


def model_set(
    *,
    states: tuple[str, ...],
    seed: int,
    horizon_days: int,
    probability_floor: float,
    drift_max: float,
    n_jobs: int,
    calibration_fraction: float,
    calibration: str,
    min_isotonic_rows: int,
    stage_prior_strength: float,
    blend_weights: tuple[float, ...],
    guard_z: float,
    logreg_c: float,
    close: Mapping,
    hazard: Mapping,
    next_stage: Mapping,
) -> dict:
    """Name -> unfitted estimator. ``close`` holds the LightGBM settings of the close
    models, ``hazard`` the time-to-event model's, ``next_stage`` the next-stage model's."""
    guard = {"blend_weights": blend_weights, "guard_z": guard_z}
    shared = guard | {"stage_prior_strength": stage_prior_strength,
                      "probability_floor": probability_floor, "n_jobs": n_jobs,
                      "random_state": seed}  # fmt: skip
    calibrated = {"calibration_fraction": calibration_fraction}
    return {
        "close": HazardCloseModel(**close, **hazard, **shared, horizon_days=horizon_days,
                                  drift_max=drift_max),  # fmt: skip
        "fixed_horizon": CloseProbabilityModel(**close, **shared, **calibrated,
                                               calibration=calibration,
                                               min_isotonic_rows=min_isotonic_rows),
        "stage_rate": StageRateTable(prior_strength=stage_prior_strength),
        "logreg": LogisticBaseline(C=logreg_c, random_state=seed),
        "next_stage": NextStageModel(states=states, **next_stage, **calibrated, **guard,
                                     random_state=seed),
    }  # fmt: skip
