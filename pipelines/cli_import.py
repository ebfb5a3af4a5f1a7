"""``dealcast import ...``: CRM exports in, a validated dealcast CRM folder out.

Each command runs an importer (``crm.importers``), prints the import summary (rows read,
landed, left out and why), writes the contract tables with ``crm.write.write_crm``, then
validates the written folder with ``crm.load.load_crm`` and prints its report. Exit code
2 when the input is unusable (a missing file or column, an undeclared date order: one
message, no traceback) or when the validation finds errors.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

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
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Import Salesforce exports (Data Loader or report CSV/Excel, API or label names)."""
    from crm.importers.salesforce import import_salesforce
    from crm.importers.vendor import load_vendor_map

    def run(funnel):
        options = load_vendor_map(
            map_file, date_format=date_format or None, timezone=timezone, decimal=decimal
        )
        return import_salesforce(source, funnel=funnel, options=options)

    _import(run, inputs=source, out=out, fmt=fmt, report=report, params=params)


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
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Import HubSpot exports: deals (with "Date entered" stage columns), companies, and
    calls / emails / meetings / notes."""
    from crm.importers.hubspot import import_hubspot
    from crm.importers.vendor import load_vendor_map

    def run(funnel):
        options = load_vendor_map(
            map_file, date_format=date_format or None, timezone=timezone, decimal=decimal
        )
        return import_hubspot(source, funnel=funnel, options=options)

    _import(run, inputs=source, out=out, fmt=fmt, report=report, params=params)


@import_app.command()
def mapped(
    config: Annotated[
        Path, typer.Option("--config", help="The mapping file (YAML).", show_default=False)
    ],
    out: OutOpt,
    source: Annotated[
        Path | None,
        typer.Option(
            "--from",
            help="Folder the mapping's input files are relative to "
            "(default: the mapping file's folder).",
        ),
    ] = None,
    fmt: FormatOpt = "csv",
    report: ReportOpt = None,
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Import any export described by a mapping file (docs/importers/mapped.md)."""
    from crm.importers.mapped import import_mapped

    base = source if source is not None else config.parent

    def run(funnel):
        return import_mapped(config, funnel=funnel, base=base)

    _import(run, inputs=base, out=out, fmt=fmt, report=report, params=params)


def _import(
    run: Callable, *, inputs: Path, out: Path, fmt: str, report: Path | None, params: Path
) -> None:
    """Params -> importer -> summary -> write -> validate -> report; exit 2 on errors."""
    from crm.importers.common import ImportInputError
    from crm.load import load_crm
    from crm.write import write_crm
    from pipelines.cli import fail, load_params

    if fmt not in ("csv", "parquet"):
        raise fail(f"--format must be csv or parquet, not {fmt!r}")
    if out.resolve() == inputs.resolve():
        raise fail(f"--out {out} is the folder of the input files; write to another folder")
    funnel = load_params(params).funnel.to_funnel()
    try:
        result = run(funnel)
    except ImportInputError as exc:
        raise fail(str(exc)) from None
    typer.echo(result.summary.to_text())
    if result.data.deals.empty:
        raise fail("no deal landed (see the summary above); nothing was written")
    written = write_crm(result.data, out, fmt=fmt)
    for name, path in written.items():
        typer.echo(f"wrote {len(result.data.table(name)):>10,} rows  {name:<14} {path}")
    typer.echo(f"\nValidating {out} against the data contract")
    loaded = load_crm(out, funnel=funnel, as_of=None)
    typer.echo(loaded.report.to_text())
    if report is not None:
        from pipelines.io import write_json_atomic

        write_json_atomic(
            report, {"import": result.summary.to_dict(), "validation": loaded.report.to_dict()}
        )
    if not loaded.report.ok:
        raise typer.Exit(2)
