"""The ``dealcast`` command line. Each command: read params, call the library, write, print.

Heavy libraries are imported inside the commands, so ``dealcast --help`` stays fast and
tool environment variables are set (``pipelines.env.configure``) before they load.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from pipelines.catalog import PARAMS_FILE
from pipelines.cli_common import AsOfOpt, DataOpt, ParamsOpt, fail, handled, load_params, parse_when
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


OutOpt = Annotated[Path | None, typer.Option(help="CRM folder to write [params: paths.raw].")]
DealsOpt = Annotated[int | None, typer.Option(min=1, help="Number of deals [params].")]
SeedOpt = Annotated[int | None, typer.Option(help="Random seed [params: base.seed].")]
StartOpt = Annotated[str | None, typer.Option(help="First creation date [params].")]
FormatOpt = Annotated[str | None, typer.Option("--format", help="csv or parquet [params].")]
MessyOpt = Annotated[
    bool | None, typer.Option("--messy/--clean", help="Inject realistic dirt [params].")
]
TruthOpt = Annotated[
    Path | None, typer.Option(help="Also write the hidden ground truth here (outside --out).")
]
ScenarioOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--scenario",
        help="A failure scenario of real CRM exports; repeat to combine: short, "
        "level-shift, late-wins, left-truncated, field-stops, blank-when-open "
        "[params: generate.scenarios; given here, replaces them].",
    ),
]
FeaturesOutOpt = Annotated[
    Path | None,
    typer.Option("--out", help="Folder for features/labels.parquet [params: paths.features]."),
]
SnapshotOpt = Annotated[
    str | None,
    typer.Option(
        "--as-of", help="Build only the snapshot of this moment (scoring); else the series."
    ),
]
ListOpt = Annotated[bool, typer.Option("--list", help="Print the feature catalogue and exit.")]
MarkdownOpt = Annotated[
    bool, typer.Option("--markdown", help="With --list: as Markdown (docs/features.md).")
]


def _print_version(asked: bool) -> None:
    """``--version``: the installed package's version (its metadata), then exit 0."""
    if asked:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"dealcast {version('dealcast')}")
        except PackageNotFoundError:  # run from a source tree that was never installed
            typer.echo("dealcast (not installed: no package metadata)")
        raise typer.Exit()


@app.callback()
def main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Keep tools offline and their state in this folder, and set up logging."""
    configure(Path.cwd(), verbose=verbose)


@app.command()
@handled
def generate(
    out: OutOpt = None,
    deals: DealsOpt = None,
    seed: SeedOpt = None,
    start: StartOpt = None,
    as_of: AsOfOpt = None,
    fmt: FormatOpt = None,
    messy: MessyOpt = None,
    truth: TruthOpt = None,
    scenario: ScenarioOpt = None,
    params: ParamsOpt = Path(PARAMS_FILE),
) -> None:
    """Write a realistic synthetic CRM (the four contract tables) into a folder."""
    from pipelines.steps import run_generate

    p = load_params(params)
    g = p.generate
    fmt_ = fmt or g.format
    if fmt_ not in ("csv", "parquet"):
        raise fail(f"--format must be csv or parquet, not {fmt_!r}")
    scenarios = tuple(scenario) if scenario else g.scenarios
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
        scenarios=scenarios,
        echo=typer.echo,
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
    params: ParamsOpt = Path(PARAMS_FILE),
) -> None:
    """Check a CRM folder against the data contract; list every problem. Exit 2 on errors.

    Usable data also gets data-health warnings (judged with train.horizon_days and
    evaluate.test_days): blanks that encode the outcome or change over time, an export
    that starts mid-stream, a history too short for the default backtest, wins recorded
    late, closes set by a fixed rule."""
    import json

    from pipelines.io import writable_file, write_json_atomic
    from pipelines.steps import validate_folder, validation_as_of

    p = load_params(params)
    if report is not None:
        writable_file(report, what="--report")
    when = parse_when(as_of, option="--as-of") or validation_as_of(p.validate_.as_of)
    result = validate_folder(
        data or p.paths.raw, funnel=p.funnel.to_funnel(), as_of=when,
        horizon_days=p.train.horizon_days, test_days=p.evaluate.test_days,
    )  # fmt: skip
    if report is not None:
        write_json_atomic(report, result.report.to_dict())
    if as_json:
        typer.echo(json.dumps(result.report.to_dict(), indent=2, default=str))
    else:
        typer.echo(result.report.to_text())
        if result.data is not None:
            typer.echo("\n" + _funnel_text(result.data, p))
    if not result.report.ok:
        raise typer.Exit(2)


@app.command("features")
@handled
def features_command(
    data: DataOpt = None,
    out: FeaturesOutOpt = None,
    as_of: SnapshotOpt = None,
    list_: ListOpt = False,
    markdown: MarkdownOpt = False,
    params: ParamsOpt = Path(PARAMS_FILE),
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


def _register_subcommands() -> None:
    """The command groups of their own modules, in ``dealcast --help`` order after
    generate/validate/features: train, evaluate, demo, flow, schedule, score, serve, import,
    models."""
    from pipelines import cli_models, cli_serving
    from pipelines.cli_import import import_app
    from pipelines.cli_registry import models_app

    cli_models.register(app)
    cli_serving.register(app)
    app.add_typer(import_app, name="import")
    app.add_typer(models_app, name="models")
    from pipelines import cli_monitor

    cli_monitor.register(app)


_register_subcommands()


def _funnel_text(data, p) -> str:
    """The funnel summary ``validate`` prints (the same as the demo and the report)."""
    from pipelines.steps import data_end_of
    from serving.funnel import format_summary, funnel_summary

    end = data_end_of(data, data_end=p.features.data_end)
    summary = funnel_summary(data, funnel=p.funnel.to_funnel(), data_end=end)
    return f"funnel as of {end:%Y-%m-%d}:\n" + format_summary(summary)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app(prog_name="dealcast"))
