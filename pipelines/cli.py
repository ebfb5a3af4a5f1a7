"""The ``dealcast`` command line. Each command: read params, call the library, write, print.

Heavy libraries are imported inside the commands, so ``dealcast --help`` stays fast and
tool environment variables are set (``pipelines.env.configure``) before they load.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from pipelines.env import configure

app = typer.Typer(
    rich_markup_mode=None,  # help texts use [brackets] for their params.yaml source
    name="dealcast",
    help="Predictive B2B sales funnel: validate CRM data, build point-in-time features, "
    "score open deals and forecast revenue.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ParamsOpt = Annotated[
    Path,
    typer.Option(
        "--params", help="Params file (funnel, paths, model settings).", show_default=True
    ),
]
AsOfOpt = Annotated[
    str | None,
    typer.Option("--as-of", help="Treat this date (YYYY-MM-DD or ISO timestamp) as 'now'."),
]


def handled(command: Callable) -> Callable:
    """Turn a step's input error into one clear message and exit code 2 (no traceback)."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from pipelines.steps import StepError

        try:
            return command(*args, **kwargs)
        except StepError as exc:
            raise fail(str(exc)) from None

    return wrapper


def fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"dealcast: error: {message}", err=True)
    return typer.Exit(code)


def load_params(path: Path):
    """Params from ``path``, or a clean exit naming the problem."""
    from pipelines.params import ParamsError, load_params

    try:
        return load_params(path)
    except ParamsError as exc:
        raise fail(str(exc)) from None


def parse_when(value: str | None, *, option: str):
    """A user-given date or timestamp as a UTC ``pd.Timestamp`` (naive = UTC)."""
    import pandas as pd

    if value is None:
        return None
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise fail(f"{option} {value!r} is not a date; use YYYY-MM-DD") from None
    if ts is pd.NaT:
        raise fail(f"{option} {value!r} is not a date; use YYYY-MM-DD")
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


@app.callback()
def main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    """Keep tools offline and their state in this folder, and set up logging."""
    configure(Path.cwd(), verbose=verbose)


@app.command()
@handled
def generate(
    out: Annotated[
        Path | None, typer.Option(help="CRM folder to write [params: paths.raw].")
    ] = None,
    deals: Annotated[int | None, typer.Option(min=1, help="Number of deals [params].")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed [params: base.seed].")] = None,
    start: Annotated[str | None, typer.Option(help="First creation date [params].")] = None,
    as_of: AsOfOpt = None,
    fmt: Annotated[str | None, typer.Option("--format", help="csv or parquet [params].")] = None,
    messy: Annotated[
        bool | None, typer.Option("--messy/--clean", help="Inject realistic dirt [params].")
    ] = None,
    truth: Annotated[
        Path | None, typer.Option(help="Also write the hidden ground truth here (outside --out).")
    ] = None,
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Write a realistic synthetic CRM (the four contract tables) into a folder."""
    from pipelines.steps import run_generate

    p = load_params(params)
    g = p.generate
    fmt_ = fmt or g.format
    if fmt_ not in ("csv", "parquet"):
        raise fail(f"--format must be csv or parquet, not {fmt_!r}")
    written = run_generate(
        funnel=p.funnel.to_funnel(),
        out=out or p.paths.raw,
        truth=truth,
        n_deals=deals or g.deals,
        seed=p.base.seed if seed is None else seed,
        start=parse_when(start, option="--start") or parse_when(str(g.start), option="start"),
        as_of=parse_when(as_of, option="--as-of") or parse_when(str(g.as_of), option="as_of"),
        fmt=fmt_,
        messy=g.messy if messy is None else messy,
    )
    for name, (path, rows) in written.items():
        typer.echo(f"wrote {rows:>10,} rows  {name:<14} {path}")


@app.command()
@handled
def validate(
    data: Annotated[
        Path | None, typer.Argument(help="CRM folder [params: paths.raw].", show_default=False)
    ] = None,
    as_of: AsOfOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    report: Annotated[
        Path | None, typer.Option(help="Also write the report as JSON to this file.")
    ] = None,
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Check a CRM folder against the data contract; list every problem. Exit 2 on errors."""
    import json

    from pipelines.io import write_json_atomic
    from pipelines.steps import load_and_validate

    p = load_params(params)
    when = parse_when(as_of, option="--as-of") or _default_validate_as_of(p)
    result = load_and_validate(data or p.paths.raw, funnel=p.funnel.to_funnel(), as_of=when)
    if report is not None:
        write_json_atomic(report, result.report.to_dict())
    if as_json:
        typer.echo(json.dumps(result.report.to_dict(), indent=2, default=str))
    else:
        typer.echo(result.report.to_text())
    if not result.report.ok:
        raise typer.Exit(2)


@app.command("features")
@handled
def features_command(
    data: Annotated[
        Path | None, typer.Option("--data", help="CRM folder [params: paths.raw].")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Folder for features/labels.parquet [params: paths.features]."),
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of", help="Build only the snapshot of this moment (scoring); else the series."
        ),
    ] = None,
    list_: Annotated[
        bool, typer.Option("--list", help="Print the feature catalogue and exit.")
    ] = False,
    markdown: Annotated[
        bool, typer.Option("--markdown", help="With --list: as Markdown (docs/features.md).")
    ] = False,
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Build point-in-time features and labels, keyed by deal_id and as_of."""
    if list_:
        from features.catalog import catalog_markdown, feature_catalog, format_catalog

        catalog = feature_catalog(include_labels=True)
        text = catalog_markdown(catalog) if markdown else format_catalog(catalog)
        typer.echo(text, nl=False)
        return
    from pipelines.features_cmd import run_features

    p = load_params(params)
    run = run_features(
        folder=data or p.paths.raw,
        out=out or p.paths.features,
        funnel=p.funnel.to_funnel(),
        settings=p.features,
        as_of=parse_when(as_of, option="--as-of"),
    )
    dates = run.as_of_dates
    span = f"{dates.min().date()} .. {dates.max().date()}" if len(dates) else "none"
    typer.echo(
        f"{len(dates)} snapshot(s) {span}, data_end {run.data_end}, {run.n_features} features"
    )
    for name, (path, rows) in run.files.items():
        typer.echo(f"wrote {rows:>10,} rows  {name:<9} {path}")


DataOpt = Annotated[Path | None, typer.Option("--data", help="CRM folder [params: paths.raw].")]
TrackOpt = Annotated[
    bool, typer.Option("--track/--no-track", help="Log the run and models to MLflow.")
]


@app.command("train")
@handled
def train_command(
    data: DataOpt = None,
    as_of: AsOfOpt = None,
    track: TrackOpt = True,
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Fit the models to serve as if today were --as-of, backtest the same settings, and
    register them; they become champion only if the backtest beats the champion's."""
    from pipelines.modelling import run_train_with_backtest

    p = load_params(params)
    run, backtest = run_train_with_backtest(
        folder=data or p.paths.raw,
        funnel=p.funnel.to_funnel(),
        features=p.features,
        train=p.train,
        seed=p.base.seed,
        artifacts=p.paths.artifacts,
        as_of=parse_when(as_of, option="--as-of"),
        test_days=p.evaluate.test_days,
        ece_bins=p.evaluate.ece_bins,
        backtest_out=p.paths.reports / "backtest",
    )
    if backtest is not None:
        typer.echo("backtest of these settings (decides promotion):")
        typer.echo(_indent(format_run(backtest)))
        typer.echo("model to serve:")
    _echo_run(run, p, command="train", track=track, backtest=backtest)


@app.command("evaluate")
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
        typer.Option("--out", help="Write metrics.json, test_predictions.parquet and charts here."),
    ] = None,
    track: TrackOpt = True,
    params: ParamsOpt = Path("params.yaml"),
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
        # the backtest's own model stays with its report; paths.artifacts is train's
        artifacts=(out / "model") if out is not None else p.paths.artifacts,
        as_of=parse_when(as_of, option="--as-of"),
        test_days=p.evaluate.test_days,
        out=out,
        ece_bins=p.evaluate.ece_bins,
    )
    _echo_run(run, p, command="evaluate", track=track)


def _echo_run(run, p, *, command: str, track: bool, backtest=None) -> None:
    from pipelines.modelling import format_run

    typer.echo(format_run(run))
    if track:
        from pipelines.tracking import track as log_run

        run_id, promotions = log_run(
            run,
            command=command,
            params=p.model_dump(by_alias=True, mode="json"),
            experiment=p.evaluate.experiment,
            close_model_name=p.evaluate.close_model_name,
            next_stage_model_name=p.evaluate.next_stage_model_name,
            min_gain=p.evaluate.promote_min_log_loss_gain,
            backtest=backtest,
            register=command == "train",
        )
        typer.echo(f"mlflow run {run_id}")
        for promo in promotions:
            typer.echo(f"  {promo.model} v{promo.version}: {promo.reason}")
    files = {f"backtest {k}": v for k, v in (backtest.files if backtest else {}).items()}
    for name, path in (files | run.files).items():
        typer.echo(f"wrote {name:<21} {path}")


@app.command()
@handled
def demo(params: ParamsOpt = Path("params.yaml")) -> None:
    """The main job on synthetic data: generate, validate, train, score, export."""
    from pipelines.demo import run_demo

    p = load_params(params)
    code = run_demo(p, params_file=params, echo=typer.echo)
    if code:
        raise typer.Exit(code)


@app.command("flow")
@handled
def flow_command(
    name: Annotated[str, typer.Argument(help="train or daily_score.", show_default=False)],
    data: DataOpt = None,
    as_of: AsOfOpt = None,
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Run one Prefect flow now (train: backtest, fit, register; daily_score: export)."""
    load_params(params)  # a clean error before Prefect starts
    from pipelines.flows import FLOWS

    if name not in FLOWS:
        raise fail(f"no flow {name!r}; flows: {', '.join(FLOWS)}")
    result = FLOWS[name](params_file=str(params), data=_str(data), as_of=as_of)
    lines = result.lines() if name == "train" else [f"wrote {f}" for f in result.files.values()]
    typer.echo("\n".join([f"flow {name} finished", *lines]))


@app.command("schedule")
@handled
def schedule_command(params: ParamsOpt = Path("params.yaml")) -> None:
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
    from pipelines.modelling import format_run as _format

    return _format(run)


@app.command("score")
@handled
def score_command(
    data: DataOpt = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Score the deals open at this moment (default: the data's end, i.e. "
            "features.data_end or the latest event in the data; not the wall clock).",
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Export folder (default: params paths.exports).")
    ] = None,
    owner: Annotated[
        list[str] | None,
        typer.Option(
            "--owner",
            help="Only this owner's deals (repeatable); rank stays the team-wide rank, "
            "owner_rank is the rank within the owner.",
        ),
    ] = None,
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Rank every open deal with the champion models; write prioritised_leads_<DATE>.*"""
    from pipelines.scoring import format_score, run_score
    from pipelines.tracking import load_champion

    p = load_params(params)
    when = parse_when(as_of, option="--as-of")
    champion = load_champion(
        close_model_name=p.evaluate.close_model_name,
        next_stage_model_name=p.evaluate.next_stage_model_name,
    )
    run = run_score(
        folder=data or p.paths.raw,
        out=out or p.paths.exports,
        funnel=p.funnel.to_funnel(),
        features=p.features,
        score=p.score,
        champion=champion,
        horizon_days=champion.horizon_days or p.train.horizon_days,
        as_of=when,
        owners=tuple(owner or ()),
    )
    typer.echo(format_score(run))
    next_stage = champion.next_stage_version or "no next-stage model"
    typer.echo(f"models: {champion.close_version}, {next_stage}")
    for name, path in run.files.items():
        typer.echo(f"wrote {len(run.leads):>8,} rows  {name:<8} {path}")


@app.command("serve")
@handled
def serve_command(
    data: DataOpt = None,
    host: Annotated[
        str, typer.Option("--host", help="Interface to listen on; keep 127.0.0.1 unless proxied.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port.")] = 8000,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Score as of this moment (default: the data's end)."),
    ] = None,
    no_auth: Annotated[
        bool,
        typer.Option("--no-auth", help="Serve without a token (allowed only on a loopback host)."),
    ] = False,
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """HTTP scoring API: /health, ranked /deals, POST /score; OpenAPI at /openapi.json.
    The bearer token is read from $DEALCAST_API_TOKEN (params: serve.token_env)."""
    import os

    from pipelines.serve import run_serve

    p = load_params(params)
    run_serve(
        folder=data or p.paths.raw,
        params=p,
        host=host,
        port=port,
        as_of=parse_when(as_of, option="--as-of"),
        no_auth=no_auth,
        environ=os.environ,
    )


def _register_subcommands() -> None:
    from pipelines.cli_import import import_app

    app.add_typer(import_app, name="import")


_register_subcommands()


def _default_validate_as_of(p):
    import pandas as pd

    if p.validate_.as_of is not None:
        return parse_when(str(p.validate_.as_of), option="validate.as_of")
    return pd.Timestamp(datetime.now(UTC))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app(prog_name="dealcast"))
