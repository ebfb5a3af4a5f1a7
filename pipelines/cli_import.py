"""``dealcast import ...``: CRM exports in, a validated dealcast CRM folder out.

Each command runs an importer (``crm.importers``), prints the import summary (rows read,
landed, left out and why), writes the contract tables into a hidden staging folder beside
``--out`` (``crm.write.write_crm``), validates them there (``crm.load.load_crm``) and
prints the report. Only valid tables replace the ones in ``--out`` (``--force`` writes
invalid ones too); an existing valid folder survives a failed import. Exit code 2 when the
input is unusable (a missing or unreadable file or column, an undeclared date order, a
parsing option that cannot work: one message, no traceback) or when the validation finds
errors.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from pipelines.catalog import PARAMS_FILE
from pipelines.cli_common import fail, load_params, os_error_message

import_app = typer.Typer(
    rich_markup_mode=None,  # help texts use [brackets] for their params.yaml source
    help="Turn CRM exports into a dealcast CRM folder: Salesforce, HubSpot, or any export "
    "described by a mapping file. Prints what landed where, then validates the result.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ParamsOpt = Annotated[
    Path,
    typer.Option(
        "--params", help="Params file (funnel stages and outcome labels).", show_default=True
    ),
]
OutOpt = Annotated[
    Path,
    typer.Option("--out", help="CRM folder to write (the contract tables).", show_default=False),
]
FormatOpt = Annotated[str, typer.Option("--format", help="csv or parquet.")]
MapOpt = Annotated[
    Path | None,
    typer.Option(
        "--map",
        "--stage-map",
        help="YAML with stages:, channels:, roles:, currency: and parsing keys "
        "(date_format, timezone, decimal, thousands); a file of plain 'name: stage' pairs "
        "is read as stages:.",
    ),
]
DateFormatOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--date-format",
        help="strftime format of non-ISO dates, e.g. '%d.%m.%Y' "
        "or '%m/%d/%Y %I:%M %p' (or iso, epoch_s, epoch_ms, excel); repeat it "
        "for several formats, tried in order.",
    ),
]
TimezoneOpt = Annotated[
    str | None,
    typer.Option(
        "--timezone",
        help="Zone of timestamps written without one, e.g. Europe/Berlin (default: UTC).",
    ),
]
DecimalOpt = Annotated[
    str | None, typer.Option("--decimal", help="Decimal separator of amounts: '.' or ','.")
]
ForceOpt = Annotated[
    bool,
    typer.Option(
        "--force",
        help="Replace the tables in --out even when the imported data has validation errors.",
    ),
]
ReportOpt = Annotated[
    Path | None,
    typer.Option(
        "--report", help="Also write the import summary and validation report as JSON to this file."
    ),
]


@import_app.command()
def salesforce(
    source: Annotated[
        Path,
        typer.Option(
            "--from",
            help="Folder with Opportunity.csv, "
            "OpportunityHistory.csv, Account.csv, Task.csv, "
            "Event.csv ...",
            show_default=False,
        ),
    ],
    out: OutOpt,
    map_file: MapOpt = None,
    date_format: DateFormatOpt = None,
    timezone: TimezoneOpt = None,
    decimal: DecimalOpt = None,
    fmt: FormatOpt = "csv",
    report: ReportOpt = None,
    force: ForceOpt = False,
    params: ParamsOpt = Path(PARAMS_FILE),
) -> None:
    """Import Salesforce exports (Data Loader or report CSV/Excel, API or label names)."""
    from crm.importers.salesforce import import_salesforce

    run = _vendor(import_salesforce, source, map_file, date_format, timezone, decimal)
    _import(run, inputs=source, out=out, fmt=fmt, report=report, params=params, force=force)


@import_app.command()
def hubspot(
    source: Annotated[
        Path,
        typer.Option(
            "--from",
            help="Folder with the deals export (and optionally companies and engagement exports).",
            show_default=False,
        ),
    ],
    out: OutOpt,
    map_file: MapOpt = None,
    date_format: DateFormatOpt = None,
    timezone: TimezoneOpt = None,
    decimal: DecimalOpt = None,
    fmt: FormatOpt = "csv",
    report: ReportOpt = None,
    force: ForceOpt = False,
    params: ParamsOpt = Path(PARAMS_FILE),
) -> None:
    """Import HubSpot exports: deals (with "Date entered" stage columns), companies, and
    calls / emails / meetings / notes."""
    from crm.importers.hubspot import import_hubspot

    run = _vendor(import_hubspot, source, map_file, date_format, timezone, decimal)
    _import(run, inputs=source, out=out, fmt=fmt, report=report, params=params, force=force)


def _vendor(importer: Callable, source: Path, map_file, date_format, timezone, decimal):
    """``importer`` of ``source`` with the vendor map's options (read when it runs)."""
    from crm.importers.vendor import load_vendor_map

    def run(funnel):
        options = load_vendor_map(
            map_file, date_format=date_format or None, timezone=timezone, decimal=decimal
        )
        return importer(source, funnel=funnel, options=options)

    return run


ConfigOpt = Annotated[
    Path, typer.Option("--config", help="The mapping file (YAML).", show_default=False)
]
MappedFromOpt = Annotated[
    Path | None,
    typer.Option(
        "--from",
        help="Folder the mapping's input files are relative to "
        "(default: the mapping file's folder).",
    ),
]


@import_app.command()
def mapped(
    config: ConfigOpt,
    out: OutOpt,
    source: MappedFromOpt = None,
    fmt: FormatOpt = "csv",
    report: ReportOpt = None,
    force: ForceOpt = False,
    params: ParamsOpt = Path(PARAMS_FILE),
) -> None:
    """Import any export described by a mapping file (docs/importers/mapped.md). A mapping
    with a funnel: section brings its own funnel (then --params is not needed) and writes it
    as OUT/funnel.yaml, to paste into params.yaml."""
    from crm.importers.common import ImportInputError
    from crm.importers.mapped import import_mapped, mapping_funnel
    from crm.importers.mapping import load_mapping

    base = source if source is not None else config.parent
    try:
        own = mapping_funnel(load_mapping(config))
    except ImportInputError as exc:
        raise fail(str(exc)) from None
    if own is None and not params.is_file():
        raise fail(
            f"{params}: no such params file, and {config} has no funnel: section; pass "
            "--params with your params.yaml (its funnel.stages are what stage names must "
            "become), or add funnel: {stages: [...]} to the mapping"
        )

    def run(funnel):
        return import_mapped(config, funnel=funnel, base=base)

    _import(run, inputs=base, out=out, fmt=fmt, report=report, params=params, force=force,
            own_funnel=own, source=str(config))  # fmt: skip


def _import(
    run: Callable,
    *,
    inputs: Path,
    out: Path,
    fmt: str,
    report: Path | None,
    params: Path,
    force: bool = False,
    own_funnel=None,
    source: str = "",
) -> None:
    """Params -> importer -> summary -> stage -> validate -> replace -> report; exit 2 on
    errors (and ``out`` left as it was unless ``force``)."""

    if fmt not in ("csv", "parquet"):
        raise fail(f"--format must be csv or parquet, not {fmt!r}")
    if out.resolve() == inputs.resolve():
        raise fail(f"--out {out} is the folder of the input files; write to another folder")
    _check_outputs(out, report)
    if own_funnel is None:
        funnel = load_params(params).funnel.to_funnel()
    else:
        funnel = own_funnel
        params_funnel = load_params(params).funnel.to_funnel() if params.is_file() else None
    result = _run_importer(run, funnel, inputs)
    typer.echo(result.summary.to_text())
    if result.data.deals.empty:
        raise fail("no deal landed (see the summary above); nothing was written")
    ok, written = _stage_validate_replace(
        result, out=out, fmt=fmt, report=report, force=force, funnel=funnel
    )
    if written and own_funnel is not None:
        _funnel_snippet(out, own_funnel, params_funnel, params=params, source=source)
    if not ok:
        raise typer.Exit(2)


def _check_outputs(out: Path, report: Path | None) -> None:
    """Exit 2 now, before the import, when --out or --report cannot be written."""
    from pipelines.io import writable_file, writable_folder
    from pipelines.steps import StepError

    try:
        if out.exists() and not out.is_dir():
            raise StepError(f"--out {out} is a file, not a folder")
        writable_folder(out.parent, what="--out")
        if report is not None:
            writable_file(report, what="--report")
    except StepError as exc:
        raise fail(str(exc)) from None


def _run_importer(run: Callable, funnel, inputs: Path):
    """The importer's result, or exit 2 with one message for an input it cannot use."""
    from crm.importers.common import ImportInputError

    try:
        return run(funnel)
    except ImportInputError as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(f"cannot read the input: {os_error_message(exc)}") from None
    except (ValueError, TypeError, LookupError) as exc:  # an option no reader can work with
        raise fail(
            f"{inputs}: the import stopped: {exc}; check the parsing options (delimiter: "
            "one character, date_format: strftime codes such as %d.%m.%Y, decimal: '.' or "
            "',', encoding)"
        ) from None


def _stage_validate_replace(
    result, *, out: Path, fmt: str, report: Path | None, force: bool, funnel
) -> tuple[bool, bool]:
    """Write into a staging folder beside ``out``, validate it there, move the tables into
    ``out`` when valid or ``force``. Returns (valid, written)."""
    import shutil

    from crm.load import load_crm
    from crm.write import move_crm, write_crm
    from pipelines.io import staging_folder, write_json_atomic

    staging = staging_folder(out, "import")
    try:
        write_crm(result.data, staging, fmt=fmt)
        typer.echo("\nValidating the imported tables against the data contract")
        loaded = load_crm(staging, funnel=funnel, as_of=None)
        typer.echo(loaded.report.to_text())
        if report is not None:
            write_json_atomic(
                report, {"import": result.summary.to_dict(), "validation": loaded.report.to_dict()}
            )
        if not loaded.report.ok and not force:
            state = "left as it was" if out.exists() else "not written"
            typer.echo(
                f"\n{out} {state}: the imported data has errors (see above). Fix the export "
                "or the mapping, or pass --force to write it anyway.",
                err=True,
            )
            return False, False
        for name, path in move_crm(staging, out).items():
            typer.echo(f"wrote {len(result.data.table(name)):>10,} rows  {name:<14} {path}")
        return loaded.report.ok, True
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _funnel_snippet(out: Path, funnel, params_funnel, *, params: Path, source: str) -> None:
    """Write OUT/funnel.yaml (the mapping's funnel) and say whether params.yaml needs it."""
    from crm.importers.funnel_file import funnel_difference, write_funnel_snippet

    path = write_funnel_snippet(out, funnel, source=source)
    differs = None if params_funnel is None else funnel_difference(funnel, params_funnel)
    if params_funnel is not None and differs is None:
        typer.echo(f"\nThe mapping's funnel (written to {path}) matches {params}.")
        return
    why = f"{params} has {differs}" if differs else f"{params} does not exist"
    typer.echo(
        f"\nThe mapping's funnel was written to {path}; {why}. Before `dealcast features`, "
        f"replace the funnel: section of {params} with it."
    )
