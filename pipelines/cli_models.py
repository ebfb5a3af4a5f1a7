"""``dealcast train``, ``evaluate``, ``metrics``, ``demo``, ``flow`` and ``schedule``: fit,
backtest, register, summarise, and run the Prefect flows."""

from __future__ import annotations

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
    params: ParamsOpt = Path(PARAMS_FILE),
) -> None:
    """Fit the models to serve as if today were --as-of, backtest the same settings, and
    register them; they become champion only if the backtest beats the champion's and
    the past they were trained on is the champion's. Also backtests the revenue forecast
    (what `dealcast forecast` shows). One train at a time per project."""
    from pipelines.lock import project_lock

    p = load_params(params)
    with project_lock(Path.cwd(), "train"):  # a second train exits 2 (LockBusyError)
        _train(p, data=data, as_of=as_of, track=track, accept=accept_rewritten_history)


def _train(p, *, data: Path | None, as_of: str | None, track: bool, accept: bool) -> None:
    from pipelines.modelling import run_train_with_backtest
    from pipelines.steps import clock_of, load_usable

    clock = clock_of(p.validate_.as_of)
    if track:
        from pipelines.tracking import recover

        for note in recover(experiment=p.evaluate.experiment,
                            close_model_name=p.evaluate.close_model_name,
                            next_stage_model_name=p.evaluate.next_stage_model_name):  # fmt: skip
            typer.echo(note)
    folder, funnel = data or p.paths.raw, p.funnel.to_funnel()
    crm = load_usable(folder, funnel=funnel, data_end=p.features.data_end, clock=clock)
    run, backtest = run_train_with_backtest(
        folder=folder,
        funnel=funnel,
        features=p.features,
        train=p.train,
        seed=p.base.seed,
        as_of=parse_when(as_of, option="--as-of"),
        test_days=p.evaluate.test_days,
        ece_bins=p.evaluate.ece_bins,
        backtest_out=Catalog(p.paths).backtest,
        data=crm,
        forecast=p.forecast,
    )
    if backtest is not None:
        typer.echo("backtest of these settings (decides promotion):")
        typer.echo(_indent(format_run(backtest)))
        typer.echo("model to serve:")
    gate = _gate(p, accept=accept, clock=clock)
    _echo_run(run, p, command="train", track=track, backtest=backtest, gate=gate)


def _gate(p, *, accept: bool, clock):
    from pipelines.tracking import Gate

    return Gate(
        min_gain=p.evaluate.promote_min_log_loss_gain,
        max_rewrite_share=p.evaluate.max_history_rewrite_share,
        accept_rewritten_history=accept,
        clock=clock,
    )


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

    p = load_params(params)
    run = run_evaluate(
        folder=data or p.paths.raw,
        funnel=p.funnel.to_funnel(),
        features=p.features,
        train=p.train,
        seed=p.base.seed,
        # writes nothing without --out: a backtest's model never serves
        as_of=parse_when(as_of, option="--as-of"),
        test_days=p.evaluate.test_days,
        out=out,
        ece_bins=p.evaluate.ece_bins,
    )
    _echo_run(run, p, command="evaluate", track=track)


def _echo_run(run, p, *, command: str, track: bool, backtest=None, gate=None) -> None:
    """Print the run, log it (``track``), and for ``train`` write its lineage record."""
    from pipelines.catalog import write_trained
    from pipelines.modelling_artifacts import trained_record
    from pipelines.modelling_report import format_run

    typer.echo(format_run(run))
    experiment, promotions = _log(run, p, command=command, backtest=backtest, gate=gate) if (
        track) else (None, [])  # fmt: skip
    if command == "train":
        record = trained_record(run, promotions, experiment=experiment)
        run.files["lineage"] = write_trained(Catalog(p.paths).trained, record)
    files = {f"backtest {k}": v for k, v in (backtest.files if backtest else {}).items()}
    for name, path in (files | run.files).items():
        typer.echo(f"wrote {name:<21} {path}")


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


def _log(run, p, *, command: str, backtest, gate) -> tuple[str, list]:
    """Log ``run`` in MLflow (register and gate for ``train``); (experiment, promotions).

    Under ``dvc exp run`` the run goes to the ``-dvc-exp`` experiment and a pair is
    registered only if the gate promotes it."""
    from pipelines.steps import spec_of
    from pipelines.tracking import dvc_experiment, experiment_name
    from pipelines.tracking import track as log_run

    experiment = experiment_name(p.evaluate.experiment)
    run_id, promotions = log_run(
        run, command=command, params=p.model_dump(by_alias=True, mode="json"),
        experiment=experiment, close_model_name=p.evaluate.close_model_name,
        next_stage_model_name=p.evaluate.next_stage_model_name, spec=spec_of(p.features),
        gate=gate, backtest=backtest, register=command == "train",
        promoted_only=dvc_experiment() is not None,
    )  # fmt: skip
    typer.echo(f"mlflow run {run_id} (experiment {experiment})")
    for promo in promotions:
        typer.echo(f"  {promo.model} {promo.label}: {promo.reason}")
    return experiment, promotions


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
    result = FLOWS[name](params_file=str(params), data=_str(data), as_of=as_of)
    lines = result.lines() if name == "train" else [f"wrote {f}" for f in result.files.values()]
    typer.echo("\n".join([f"flow {name} finished", *lines]))


@handled
def schedule_command(params: ParamsOpt = Path(PARAMS_FILE)) -> None:
    """Serve the daily_score flow on the cron in params.yaml (runs until stopped).

    Needs a Prefect server (its scheduler creates the runs): `make prefect-ui` in another
    terminal, then PREFECT_API_URL=http://127.0.0.1:4200/api dealcast schedule."""
    p = load_params(params)
    if not os.environ.get("PREFECT_API_URL"):
        raise fail(
            "a schedule needs a running Prefect server (the temporary one cannot schedule): "
            "start one with `make prefect-ui` (or `prefect server start`) in another terminal, "
            "then run PREFECT_API_URL=http://127.0.0.1:4200/api dealcast schedule"
        )
    from prefect.schedules import Cron

    from pipelines.flows import daily_score_flow

    typer.echo(f"serving daily_score on '{p.schedule.cron}' ({p.schedule.timezone}); Ctrl-C stops")
    daily_score_flow.serve(
        name="dealcast-daily-score",
        schedule=Cron(p.schedule.cron, timezone=p.schedule.timezone),
        parameters={"params_file": str(params.resolve())},
    )


def _str(path: Path | None) -> str | None:
    return None if path is None else str(path)


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines())


def format_run(run) -> str:
    from pipelines.modelling_report import format_run as _format

    return _format(run)
