"""``dealcast train``, ``evaluate``, ``metrics``, ``demo``, ``flow`` and ``schedule``: fit,
backtest, register, summarise, and run the Prefect flows."""

from __future__ import annotations

import gc
import os
from pathlib import Path
from typing import Annotated

import typer

from pipelines.catalog import PARAMS_FILE, Catalog
from pipelines.cli_common import (
    AsOfOpt,
    DataOpt,
    ParamsOpt,
    TrackOpt,
    fail,
    handled,
    load_params,
    parse_when,
)


def register(app: typer.Typer) -> None:
    """Add the commands to ``app`` in the order ``dealcast --help`` lists them."""
    app.command("train")(train_command)
    app.command("evaluate")(evaluate_command)
    app.command("metrics")(metrics_command)
    app.command()(demo)
    app.command("flow")(flow_command)
    app.command("schedule")(schedule_command)


@handled
def train_command(
    data: DataOpt = None,
    as_of: AsOfOpt = None,
    track: TrackOpt = True,
    accept_rewritten_history: Annotated[
        bool,
        typer.Option(
            "--accept-rewritten-history",
            help="Promote even though deals the champion saw closed now have another "
            "outcome or close date (a CRM migration, corrected outcomes).",
        ),
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Train and register even when nothing changed since the champion (same "
            "data fingerprint, params and code commit), e.g. after a code change.",
        ),
    ] = False,
    params: ParamsOpt = Path(PARAMS_FILE),
) -> None:
    """Fit the models to serve as if today were --as-of, backtest the same settings, and
    register them; they become champion only if the backtest beats the champion's and
    the past they were trained on is the champion's. Also backtests the revenue forecast
    (what `dealcast forecast` shows). Nothing is registered when nothing changed since the
    champion (see --force). One train at a time per project."""
    from pipelines.lock import project_lock

    p = load_params(params)
    with project_lock(Path.cwd(), "train"):  # a second train exits 2 (LockBusyError)
        _train(p, data=data, as_of=as_of, track=track, accept=accept_rewritten_history,
               force=force)  # fmt: skip


def _train(p, *, data: Path | None, as_of: str | None, track: bool, accept: bool,
           force: bool = False) -> None:  # fmt: skip
    from pipelines.modelling import run_train_with_backtest
    from pipelines.modelling_report import format_run
    from pipelines.steps import load_for

    if track:
        from pipelines.tracking import recover_registry

        for note in recover_registry(p):
            typer.echo(note)
    folder, when = data or p.paths.raw, parse_when(as_of, option="--as-of")
    crm = load_for(p, folder)
    if track and not force and (same := _unchanged(p, crm, when)):
        typer.echo(same)
        return
    run, backtest = run_train_with_backtest(p, folder=folder, data=crm, as_of=when)
    if backtest is not None:
        typer.echo("backtest of these settings (decides promotion):")
        typer.echo("\n".join(f"  {line}" for line in format_run(backtest).splitlines()))
        typer.echo("model to serve:")
    _echo_run(run, p, command="train", track=track, backtest=backtest, accept=accept,
              force=force)  # fmt: skip


def _unchanged(p, crm, when) -> str:
    """Why this train can stop before fitting ("" when it cannot): nothing changed since
    the champion (:func:`pipelines.tracking.unchanged_champion`) and train's outputs that
    DVC tracks are still there, of this CRM. When ``dvc repro`` removed them, the train
    fits again to rewrite them, and still registers nothing."""
    from pipelines.catalog import evaluation_files, forecast_backtest_files, read_json
    from pipelines.steps import data_end_of, fingerprint
    from pipelines.tracking import unchanged_champion

    end, ours = data_end_of(crm, data_end=p.features.data_end), fingerprint(crm)
    same = unchanged_champion(p, fingerprint=ours, cutoff=end if when is None else min(when, end))
    where = Catalog(p.paths)
    files = [where.trained, evaluation_files(where.backtest)["metrics"],
             forecast_backtest_files(where.backtest)["backtest_metrics"]]  # fmt: skip
    if not same or not all(f.exists() for f in files):
        return ""
    lineage = read_json(where.trained)
    close = lineage.get("models", {}).get(same[0].model, {})
    if lineage.get("data_fingerprint") != ours or close.get("version") != same[0].version:
        return ""
    return f"{same[0].reason}; kept {where.trained} and {where.backtest}"


@handled
def evaluate_command(
    data: DataOpt = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Cutoff: train as of this date, test on later snapshots "
            "[default: train.horizon_days + evaluate.test_days before the data's end].",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Write metrics.json, test_predictions.parquet, charts and the backtest's "
            "model here (without it nothing is written).",
        ),
    ] = None,
    track: TrackOpt = True,
    params: ParamsOpt = Path(PARAMS_FILE),
) -> None:
    """Backtest: train at --as-of, score the deals open at later snapshots, compare."""
    from pipelines.modelling import run_evaluate
    from pipelines.progress import step

    p = load_params(params)
    with step("backtested these settings") as done:
        run = run_evaluate(
            folder=data or p.paths.raw, funnel=p.funnel.to_funnel(), features=p.features,
            train=p.train, seed=p.base.seed, as_of=parse_when(as_of, option="--as-of"),
            test_days=p.evaluate.test_days, ece_bins=p.evaluate.ece_bins,
            out=out,  # writes nothing without --out: a backtest's model never serves
        )  # fmt: skip
        done.detail = f"trained at {run.prepared.cutoff.date()}, tested after"
    _echo_run(run, p, command="evaluate", track=track)


def _echo_run(run, p, *, command: str, track: bool, backtest=None, accept=False,
              force=False) -> None:  # fmt: skip
    """Print the run, log it (``track``; for ``train`` register, gate and write its lineage
    record: :func:`pipelines.tracking.log_train`), print what was written."""
    from pipelines.modelling_report import format_run

    typer.echo(format_run(run))
    experiment, run_id, promotions = _log(
        run, p, command=command, track=track, backtest=backtest, accept=accept, force=force
    )
    if track and run_id is None and promotions:
        typer.echo(promotions[0].reason)
    elif track:
        typer.echo(f"mlflow run {run_id} (experiment {experiment})")
        for promo in promotions:
            typer.echo(f"  {promo.model} {promo.label}: {promo.reason}")
    files = {f"backtest {k}": v for k, v in (backtest.files if backtest else {}).items()}
    for name, path in (files | run.files).items():
        typer.echo(f"wrote {name:<21} {path}")


def _log(run, p, *, command: str, track: bool, backtest, accept: bool, force: bool) -> tuple:
    """(experiment, MLflow run id, promotions) of logging the run, a timed step."""
    from pipelines.progress import step
    from pipelines.tracking import log_train
    from pipelines.tracking import track as log_run

    if command == "train":
        what = "logged and registered in MLflow" if track else "wrote the lineage record"
        with step(what):
            return log_train(run, backtest, p, accept=accept, tracked=track, force=force)
    if not track:
        return None, None, []
    with step("logged the run in MLflow"):
        return log_run(run, p, command=command)


@handled
def metrics_command(
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Headline metrics file [default: params paths.metrics]."),
    ] = None,
    params: ParamsOpt = Path(PARAMS_FILE),
) -> None:
    """Write the headline metrics (AUC, log loss, ECE, next-stage log loss, forecast WAPE)
    of the latest backtests: the numbers `dvc metrics show` and `dvc exp show` print."""
    from pipelines.headline import format_metrics, run_metrics

    where = Catalog(load_params(params).paths)
    path, numbers = run_metrics(backtest=where.backtest, out=out or where.metrics)
    typer.echo(format_metrics(numbers))
    typer.echo(f"wrote {path}")


@handled
def demo(params: ParamsOpt = Path(PARAMS_FILE)) -> None:
    """The main job on synthetic data: generate, validate, train, score, export."""
    from pipelines.demo import run_demo

    p = load_params(params)
    code = run_demo(p, params_file=params, echo=typer.echo)
    if code:
        raise typer.Exit(code)


@handled
def flow_command(
    name: Annotated[str, typer.Argument(help="train or daily_score.", show_default=False)],
    data: DataOpt = None,
    as_of: AsOfOpt = None,
    params: ParamsOpt = Path(PARAMS_FILE),
) -> None:
    """Run one Prefect flow now (train: backtest, fit, register; daily_score: export)."""
    load_params(params)  # a clean error before Prefect starts
    from pipelines.flows import FLOWS

    if name not in FLOWS:
        raise fail(f"no flow {name!r}; flows: {', '.join(FLOWS)}")
    result = FLOWS[name](params_file=str(params), data=data and str(data), as_of=as_of)
    lines = result.lines() if name == "train" else [f"wrote {f}" for f in result.files.values()]
    typer.echo("\n".join([f"flow {name} finished", *lines]))


@handled
def schedule_command(params: ParamsOpt = Path(PARAMS_FILE)) -> None:
    """Serve the daily_score flow on the cron in params.yaml (runs until stopped).

    Needs a Prefect server (its scheduler creates the runs): `make prefect-ui` in another
    terminal, then PREFECT_API_URL=http://127.0.0.1:4200/api dealcast schedule. Ctrl-C
    stops it (pausing the schedule on the server); if the server goes away it exits 1."""
    p = load_params(params)
    url = os.environ.get("PREFECT_API_URL")
    if not url:
        raise fail(
            "a schedule needs a running Prefect server (the temporary one cannot schedule): "
            "start one with `make prefect-ui` (or `prefect server start`) in another terminal, "
            "then run PREFECT_API_URL=http://127.0.0.1:4200/api dealcast schedule"
        )
    stopped = _serve_schedule(p, params=params, url=url)
    typer.echo(
        "stopped; the schedule is paused on the server until the next `dealcast schedule`"
        if stopped.paused
        else "stopped; the schedule was not paused on the server (it did not answer)"
    )


def _serve_schedule(p, *, params: Path, url: str):
    """:func:`pipelines.schedule.serve_schedule` of the daily_score flow; clean exits."""
    from prefect.schedules import Cron

    from pipelines.flows import daily_score_flow
    from pipelines.schedule import NoServerError, ServerGoneError, serve_schedule

    try:
        return serve_schedule(
            daily_score_flow, name="dealcast-daily-score", api_url=url, echo=typer.echo,
            schedule=Cron(p.schedule.cron, timezone=p.schedule.timezone),
            when=f"at '{p.schedule.cron}' ({p.schedule.timezone})",
            parameters={"params_file": str(params.resolve())},
        )  # fmt: skip
    except NoServerError as exc:
        raise fail(
            f"{exc}: start one with `make prefect-ui` (or `prefect server start`) in "
            "another terminal, or point PREFECT_API_URL at a running one"
        ) from None
    except ServerGoneError as exc:
        raise fail(
            f"{exc}; the schedule stopped. Start the server again (`make prefect-ui`) "
            "and rerun `dealcast schedule`",
            code=1,
        ) from None
    finally:
        # Nothing is left to run: spare the ~2 s the interpreter would spend collecting
        # Prefect's, MLflow's and pandas' objects on exit, so Ctrl-C returns at once.
        gc.freeze()
