"""Prefect flows: the pipeline's steps with run history, logs, retries and a schedule.

The flows call the same step functions as the CLI and DVC (``pipelines.steps``,
``pipelines.modelling``, ``pipelines.scoring``), so a run behaves the same whichever way it
is started. Tasks wrap only what earns it: reading the CRM (visible, fails fast with the
validation report), the expensive fits, and the MLflow registry calls (retried: SQLite
can be briefly locked). Frames pass between tasks in memory (``NO_CACHE``: DVC caches).

With no ``PREFECT_API_URL`` Prefect starts a temporary local server for the run; to keep
runs and watch them in the UI, start ``prefect server start`` and point
``PREFECT_API_URL`` at it (see the README).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from pipelines.catalog import PARAMS_FILE, Catalog
from pipelines.forecasting import format_forecast, run_forecast
from pipelines.lock import project_lock
from pipelines.modelling import run_train_with_backtest
from pipelines.modelling_report import format_run
from pipelines.monitoring import format_monitor, run_monitor
from pipelines.params import Params, load_params
from pipelines.progress import step
from pipelines.scoring import format_score, run_score
from pipelines.steps import StepError, as_utc, load_for
from pipelines.tracking import log_train, recover_registry
from pipelines.tracking_champion import champion_of

REGISTRY_RETRIES = 2


@dataclass(frozen=True)
class Trained:
    """What the train flow fitted (``final``), its backtest, and the MLflow outcome."""

    final: object
    backtest: object | None
    mlflow_run: str | None
    promotions: list

    def lines(self) -> list[str]:
        made = self.final.forecast_backtest
        if self.mlflow_run is None:  # nothing changed since the champion: nothing logged
            logged = [p.reason for p in self.promotions[:1]]
        else:
            logged = [f"mlflow run {self.mlflow_run}",
                      *(f"{p.model} {p.label}: {p.reason}" for p in self.promotions)]  # fmt: skip
        return [
            *logged,
            *(["revenue forecast:", *made.lines()] if made is not None else []),
        ]


@task(name="load and validate", cache_policy=NO_CACHE)
def load_crm_task(folder: Path, p: Params):
    """The validated CRM; fails the flow with the validation report if it is not usable."""
    data = load_for(p, folder)
    get_run_logger().info("%s: %d deals, tables %s", folder, len(data.deals), data.present())
    return data


@task(name="backtest and fit", cache_policy=NO_CACHE)
def fit_task(data, folder: Path, p: Params, as_of):
    """The backtest that gates promotion, the fit on everything known at as_of, then the
    revenue forecast's backtest (written beside the first)."""
    final, backtest = run_train_with_backtest(p, folder=folder, data=data, as_of=as_of)
    logger = get_run_logger()
    for line in format_run(backtest or final).splitlines():
        logger.info(line)
    for line in final.forecast_backtest.lines() if backtest else []:
        logger.info(line)  # without a backtest, format_run(final) printed it
    return final, backtest


@task(name="register", cache_policy=NO_CACHE, retries=REGISTRY_RETRIES, retry_delay_seconds=2)
def register_task(final, backtest, p: Params) -> tuple[str, list]:
    """Log the run in MLflow, register the models, apply the champion gate and write the
    lineage record DVC tracks (:func:`pipelines.tracking.log_train`)."""
    for note in recover_registry(p):
        get_run_logger().warning(note)
    with step("logged and registered in MLflow"):
        _, run_id, promotions = log_train(final, backtest, p)
    for promo in promotions:
        get_run_logger().info("%s %s: %s", promo.model, promo.label, promo.reason)
    return run_id, promotions


@task(
    name="load champion",
    cache_policy=NO_CACHE,
    retries=REGISTRY_RETRIES,
    retry_delay_seconds=2,
    retry_condition_fn=lambda task, run, state: not _is_step_error(state),
)
def champion_task(p: Params):
    return champion_of(p)


@task(name="score and export", cache_policy=NO_CACHE)
def score_task(data, out: Path, p: Params, champion, as_of, *, folder: Path):
    """The prioritised-leads export of ``data``, the validated CRM of ``folder``."""
    with step("scored and exported") as done:
        run = run_score(p, champion, folder=folder, out=out, as_of=as_of, data=data)
        done.detail = f"{run.open_deals:,} deals open at {run.as_of:%Y-%m-%d}"
    for line in format_score(run).splitlines():
        get_run_logger().info(line)
    return run


@task(name="forecast", cache_policy=NO_CACHE)
def forecast_task(data, out: Path, p: Params, champion, as_of):
    """Revenue per month and quarter with P10/P50/P90 from ``data`` (the validated CRM),
    and train's backtest of it; fits nothing."""
    with step("forecast revenue (no fit)"):
        run = run_forecast(p, champion, out=out, as_of=as_of, data=data)
    for line in format_forecast(run).splitlines():
        get_run_logger().info(line)
    return run


@task(name="monitor", cache_policy=NO_CACHE)
def monitor_task(data, p: Params, as_of, *, folder: Path):
    """Realised calibration of the archived days up to ``as_of`` against ``data`` as known
    then (the archive the score and forecast tasks just appended to; fits and scores
    nothing). A problem with it is a warning: the day's export and forecast are written."""
    try:
        with step("monitored what past days said"):
            run = run_monitor(p, folder=folder, data=data, as_of=as_of)
    except (StepError, OSError, ValueError) as error:
        get_run_logger().warning("monitor skipped: %s", error)
        return None
    for line in format_monitor(run).splitlines():
        get_run_logger().info(line)
    return run


@dataclass(frozen=True)
class Scored:
    """What the daily_score flow wrote: the prioritised list, the revenue forecast and the
    realised-calibration tables (None when the monitor was skipped)."""

    scoring: object
    forecast: object
    monitor: object | None = None

    @property
    def files(self) -> dict[str, Path]:
        leads = {f"leads {k}": v for k, v in self.scoring.files.items()}
        monitored = self.monitor.files if self.monitor is not None else {}
        return (
            leads
            | {f"forecast {k}": v for k, v in self.forecast.files.items()}
            | {f"monitor {k}": v for k, v in monitored.items()}
        )


@flow(name="train")
def train_flow(params_file: str = PARAMS_FILE, data: str | None = None, as_of: str | None = None):
    """load → validate → features → backtest → fit → forecast backtest → register (gated
    promotion)."""
    p = load_params(Path(params_file))
    folder = Path(data) if data else p.paths.raw
    with project_lock(Path.cwd(), "train"):  # one train at a time per project
        crm = load_crm_task(folder, p)
        final, backtest = fit_task(crm, folder, p, _when(as_of))
        run_id, promotions = register_task(final, backtest, p)
    return Trained(final, backtest, run_id, promotions)


@flow(name="daily_score")
def daily_score_flow(
    params_file: str = PARAMS_FILE,
    data: str | None = None,
    as_of: str | None = None,
    out: str | None = None,
):
    """load → validate (once) → score with @champion → export → forecast (no training: the
    forecast's backtest is train's) → monitor (what archived days said against what
    happened since)."""
    p = load_params(Path(params_file))
    champion = champion_task(p)
    folder = Path(data) if data else p.paths.raw
    crm = load_crm_task(folder, p)
    exports = Path(out) if out else p.paths.exports
    scoring = score_task(crm, exports, p, champion, _when(as_of), folder=folder)
    forecast = forecast_task(crm, Catalog(p.paths).forecast, p, champion, scoring.as_of)
    return Scored(scoring, forecast, monitor_task(crm, p, scoring.as_of, folder=folder))


FLOWS = {"train": train_flow, "daily_score": daily_score_flow}


def _when(value: str | None):
    return None if value is None else as_utc(value)


def _is_step_error(state) -> bool:
    try:
        state.result()
    except StepError:
        return True
    except Exception:  # noqa: BLE001 - any other failure may be transient
        return False
    return False
