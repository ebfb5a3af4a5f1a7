"""``params.yaml`` parsed once into frozen pydantic models.

A params file may give only what it changes (just ``funnel:``, or one key of
``train.close:``): it is laid key by key over the documented defaults, the project's
``params.yaml`` as shipped beside this module (``pipelines/params.yaml``, kept identical by
a test). Unknown keys are errors (``extra="forbid"``), so a typo in ``params.yaml`` or in
``dvc exp run -S`` fails fast instead of being silently ignored.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from crm.schemas import LOST, WON, Funnel


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BaseParams(_Section):
    seed: int


class PathsParams(_Section):
    raw: Path
    truth: Path
    validation_report: Path
    features: Path
    artifacts: Path
    exports: Path
    reports: Path
    metrics: Path
    archive: Path


class FunnelParams(_Section):
    stages: tuple[str, ...] = Field(min_length=1)
    won_label: str
    lost_label: str
    exclude_attributes: tuple[str, ...] = ()
    currency: str | None = Field(default=None, max_length=8, pattern=r"^[A-Za-z$€£¥ ]+$")

    @field_validator("stages")
    @classmethod
    def _distinct_open_stages(cls, stages: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(stages)) != len(stages):
            raise ValueError(f"funnel stages must be distinct, got {list(stages)}")
        clash = {WON, LOST} & set(stages)
        if clash:
            raise ValueError(f"{sorted(clash)} are outcomes, not open stages")
        return stages

    def to_funnel(self) -> Funnel:
        return Funnel(
            stages=self.stages,
            won_label=self.won_label,
            lost_label=self.lost_label,
            exclude_attributes=self.exclude_attributes,
        )


class GenerateParams(_Section):
    deals: int = Field(gt=0)
    start: date
    as_of: date
    format: Literal["csv", "parquet"]
    messy: bool
    scenarios: tuple[str, ...] = ()

    @field_validator("scenarios")
    @classmethod
    def _known_scenarios(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        from crm.synthetic.scenarios import UnknownScenarioError, scenario_order

        try:
            scenario_order(names)
        except UnknownScenarioError as exc:
            raise ValueError(str(exc)) from None
        return names


class ValidateParams(_Section):
    as_of: date | None


class FeaturesParams(_Section):
    """Snapshots, windows, smoothing and label horizons of ``dealcast features``."""

    freq: str = Field(min_length=1)
    start: date | None
    start_after_late_wins: bool
    end: date | None
    data_end: date | None
    windows_days: tuple[int, ...] = Field(min_length=1)
    trend_days: int = Field(gt=0)
    recency_channels: tuple[str, ...]
    prior_strength: float = Field(ge=0)
    horizons_days: tuple[int, ...] = Field(min_length=1)

    @field_validator("windows_days", "horizons_days")
    @classmethod
    def _positive_distinct_days(cls, days: tuple[int, ...]) -> tuple[int, ...]:
        if any(d <= 0 for d in days) or len(set(days)) != len(days):
            raise ValueError(f"day counts must be positive and distinct, got {list(days)}")
        return days

    @field_validator("freq")
    @classmethod
    def _pandas_frequency(cls, freq: str) -> str:
        from pandas.tseries.frequencies import to_offset

        try:
            to_offset(freq)
        except ValueError:
            raise ValueError(f"{freq!r} is not a pandas frequency (e.g. W-MON, D, MS)") from None
        return freq


class LightGBMParams(_Section):
    n_estimators: int = Field(gt=0)
    learning_rate: float = Field(gt=0)
    num_leaves: int = Field(ge=2)
    min_child_samples: int = Field(ge=1)
    reg_lambda: float = Field(ge=0)
    colsample_bytree: float = Field(gt=0, le=1)
    early_stopping_rounds: int = Field(ge=0)


class NextStageParams(_Section):
    n_estimators: int = Field(gt=0)
    learning_rate: float = Field(gt=0)
    num_leaves: int = Field(ge=2)
    min_child_samples: int = Field(ge=1)
    reg_lambda: float = Field(ge=0)
    early_stopping_rounds: int = Field(ge=0)
    alpha: float = Field(gt=0)
    floor: float = Field(gt=0, lt=0.1)


class HazardParams(_Section):
    """The time-to-event close model (:mod:`models.hazard`)."""

    edges_days: tuple[int, ...] = Field(min_length=1)
    folds: int = Field(ge=2, le=10)
    recalibration_days: int = Field(gt=0)
    recalibration_prior: float = Field(ge=0)

    @field_validator("edges_days")
    @classmethod
    def _increasing_days(cls, days: tuple[int, ...]) -> tuple[int, ...]:
        if any(d <= 0 for d in days) or list(days) != sorted(set(days)):
            raise ValueError(f"interval ends must be positive and increasing, got {list(days)}")
        return days


class TrainParams(_Section):
    """Close-probability and next-stage models (``dealcast train`` / ``evaluate``)."""

    horizon_days: int = Field(gt=0)
    probability_floor: float = Field(gt=0, lt=0.1)
    drift_max: float = Field(gt=0, le=1)
    n_jobs: int = Field(ge=1)
    calibration_fraction: float = Field(gt=0, lt=1)
    calibration: Literal["sigmoid", "isotonic"]
    min_isotonic_rows: int = Field(ge=1)
    stage_prior_strength: float = Field(ge=0)
    blend_weights: tuple[float, ...] = Field(min_length=1)
    guard_z: float = Field(ge=0)
    logreg_c: float = Field(gt=0)
    explain_top_n: int = Field(ge=1)
    close: LightGBMParams
    hazard: HazardParams
    next_stage: NextStageParams

    @field_validator("blend_weights")
    @classmethod
    def _weights_in_unit_interval(cls, weights: tuple[float, ...]) -> tuple[float, ...]:
        if any(not 0 <= w <= 1 for w in weights) or 0.0 not in weights:
            raise ValueError(f"blend weights must lie in [0, 1] and include 0, got {weights}")
        return weights


class EvaluateParams(_Section):
    """Backtest metrics, MLflow names and the champion gate."""

    ece_bins: int = Field(ge=2)
    test_days: int = Field(gt=0)
    experiment: str = Field(min_length=1)
    close_model_name: str = Field(min_length=1)
    next_stage_model_name: str = Field(min_length=1)
    promote_min_log_loss_gain: float = Field(ge=0)
    max_history_rewrite_share: float = Field(ge=0, le=1)

    @property
    def model_names(self) -> dict[str, str]:
        """The registered model's name of each kind of the pair (``close``, ``next_stage``)."""
        return {"close": self.close_model_name, "next_stage": self.next_stage_model_name}


class ScoreParams(_Section):
    """The daily prioritised-leads export (``dealcast score``)."""

    priority: Literal["expected_value", "p_win"]
    top_reasons: int = Field(ge=1, le=10)
    change_threshold: float = Field(gt=0, lt=1)
    csv_bom: bool
    explain_step_days: int = Field(ge=1)
    explain_points: int = Field(ge=1, le=520)


class ServeParams(_Section):
    """The scoring API (``dealcast serve``): request limits and where the token lives."""

    max_body_bytes: int = Field(gt=0)
    max_rows: int = Field(gt=0)
    token_env: str = Field(min_length=1)
    read_timeout_seconds: float = Field(gt=0, le=300)
    score_threads: int = Field(ge=1, le=64)
    batch_max: int = Field(ge=1, le=1000)
    workers: int = Field(ge=1, le=32)


class ScheduleParams(_Section):
    """When ``dealcast schedule`` runs the daily_score flow."""

    cron: str = Field(min_length=9)
    timezone: str = Field(min_length=1)


class ForecastParams(_Section):
    """The revenue forecast and its backtest (``dealcast forecast``)."""

    months: int = Field(ge=1, le=36)
    quarters: int = Field(ge=0, le=12)
    draws: int = Field(ge=100)
    min_stage_wins: float = Field(ge=0)
    new_deal_origins: int = Field(ge=1)
    stage_prior_strength: float = Field(ge=0)
    calendar_prior_days: float = Field(ge=0)
    backtest_months: int = Field(ge=1)
    backtest_refit_months: int = Field(ge=1)
    max_groups: int = Field(ge=1, le=1000)


class Params(_Section):
    base: BaseParams
    paths: PathsParams
    funnel: FunnelParams
    generate: GenerateParams
    validate_: ValidateParams = Field(alias="validate")
    schedule: ScheduleParams
    features: FeaturesParams
    train: TrainParams
    evaluate: EvaluateParams
    score: ScoreParams
    serve: ServeParams
    forecast: ForecastParams


class ParamsError(Exception):
    """``params.yaml`` is missing, unreadable or does not match the expected shape."""


#: The documented defaults: a copy of the project's ``params.yaml`` shipped in the package.
DEFAULTS = Path(__file__).with_suffix(".yaml")


def load_params(path: Path) -> Params:
    """Read and check a params file laid over the defaults (:func:`over_defaults`); raise
    :class:`ParamsError` with a readable message."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ParamsError(f"{path}: no such params file") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ParamsError(f"{path}: cannot read params: {exc}") from None
    if raw is not None and not isinstance(raw, dict):
        raise ParamsError(f"{path}: expected a mapping of sections at the top level")
    try:
        return Params.model_validate(over_defaults(raw or {}))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ParamsError(f"{path}: {problems}") from None


def default_params() -> dict:
    """The documented defaults as parsed YAML (a fresh dict on every call)."""
    return yaml.safe_load(DEFAULTS.read_text(encoding="utf-8"))


def over_defaults(given: dict) -> dict:
    """``given`` laid over :func:`default_params` key by key (see :func:`merged`)."""
    return merged(default_params(), given)


def merged(defaults: dict, given: dict) -> dict:
    """``given`` over ``defaults``: a mapping merges into a mapping key by key; any other
    value (a list, a number, null) replaces the default, except a section left empty
    (``funnel:`` alone, i.e. null where the default is a mapping), which keeps it. Keys
    only in ``given`` stay, so the validation still refuses a typo and names it."""
    out = dict(defaults)
    for key, value in given.items():
        default = defaults.get(key)
        if isinstance(default, dict) and isinstance(value, dict):
            out[key] = merged(default, value)
        elif not (isinstance(default, dict) and value is None):
            out[key] = value
    return out
