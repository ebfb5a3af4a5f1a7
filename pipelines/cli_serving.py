"""``dealcast score`` and ``serve``: rank the open deals with the champion models, as an
export or over HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipelines.catalog import PARAMS_FILE, Catalog
from pipelines.cli_common import DataOpt, ParamsOpt, handled, load_params, parse_when
from pipelines.cli_forecast import forecast_command


def register(app: typer.Typer) -> None:
    """Add the commands to ``app`` in the order ``dealcast --help`` lists them."""
    app.command("score")(score_command)
    app.command("explain")(explain_command)
    app.command("serve")(serve_command)
    app.command("forecast")(forecast_command)
    app.command("report")(report_command)


ScoreAsOfOpt = Annotated[
    str | None,
    typer.Option(
        "--as-of",
        help="Score the deals open at this moment (default: the data's end, i.e. "
        "features.data_end or the latest event in the data; not the wall clock).",
    ),
]
ExportOpt = Annotated[
    Path | None, typer.Option("--out", help="Export folder (default: params paths.exports).")
]
OwnerOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--owner",
        help="Only this owner's deals (repeatable); rank stays the team-wide rank, "
        "owner_rank is the rank within the owner.",
    ),
]


@handled
def score_command(
    data: DataOpt = None,
    as_of: ScoreAsOfOpt = None,
    out: ExportOpt = None,
    owner: OwnerOpt = None,
    params: ParamsOpt = Path(PARAMS_FILE),
) -> None:
    """Rank every open deal with the champion models; write prioritised_leads_<DATE>.*"""
    from pipelines.io import writable_folder
    from pipelines.scoring import format_score, run_score
    from pipelines.tracking_champion import champion_of

    p = load_params(params)
    when = parse_when(as_of, option="--as-of")
    writable_folder(out or p.paths.exports, what="--out")  # before loading the models
    champion = champion_of(p)
    run = run_score(p, champion, folder=data or p.paths.raw, out=out or p.paths.exports,
                    as_of=when, owners=tuple(owner or ()))  # fmt: skip
    typer.echo(format_score(run))
    next_stage = champion.next_stage_version or "no next-stage model"
    typer.echo(f"models: {champion.close_version}, {next_stage}")
    for name, path in run.files.items():
        typer.echo(f"wrote {len(run.leads):>8,} rows  {name:<8} {path}")


@handled
def explain_command(
    deal_id: Annotated[str, typer.Argument(help="The deal's id (deals.deal_id).")],
    data: DataOpt = None,
    as_of: ScoreAsOfOpt = None,
    params: ParamsOpt = Path(PARAMS_FILE),
) -> None:
    """One deal explained: p_win and next stage beside the stage table, every driver up and
    down with its value, and what was said at past snapshots."""
    from pipelines.explaining import run_explain
    from pipelines.tracking_champion import champion_of

    p = load_params(params)
    when = parse_when(as_of, option="--as-of")
    champion = champion_of(p)
    explained = run_explain(p, champion, folder=data or p.paths.raw, deal_id=deal_id,
                            as_of=when)  # fmt: skip
    typer.echo("\n".join(explained.lines()))
    typer.echo(f"models: {champion.close_version}, {champion.next_stage_version or 'none'}")


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
    params: ParamsOpt = Path(PARAMS_FILE),
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


ReportAsOfOpt = Annotated[
    str | None,
    typer.Option(
        "--as-of", help="Report the CRM as it stood at this moment (default: the data's end)."
    ),
]
ReportOutOpt = Annotated[
    Path | None, typer.Option("--out", help="Report folder (default: <paths.reports>/funnel).")
]
ForecastOpt = Annotated[
    Path | None,
    typer.Option("--forecast", help="Forecast folder (default: <paths.reports>/forecast)."),
]


@handled
def report_command(
    data: DataOpt = None,
    as_of: ReportAsOfOpt = None,
    out: ReportOutOpt = None,
    forecast: ForecastOpt = None,
    params: ParamsOpt = Path(PARAMS_FILE),
) -> None:
    """Write the funnel report funnel_report_<DATE>.html: one self-contained HTML page
    (funnel, transitions, time in stage, bottlenecks, conversion, model, forecast, top deals)."""
    from pipelines.reporting import run_report
    from pipelines.steps import clock_of

    p = load_params(params)
    where, data_end = Catalog(p.paths), p.features.data_end
    run = run_report(
        folder=data or p.paths.raw, out=out or where.funnel, funnel=p.funnel.to_funnel(),
        backtest=where.backtest, forecast=forecast or where.forecast, exports=p.paths.exports,
        as_of=parse_when(as_of, option="--as-of"),
        data_end=parse_when(data_end, option="features.data_end") if data_end else None,
        ece_bins=p.evaluate.ece_bins, clock=clock_of(p.validate_.as_of),
        currency=p.funnel.currency, change_threshold=p.score.change_threshold,
    )  # fmt: skip
    for message in run.messages:
        typer.echo(message)
    typer.echo(f"funnel report as of {run.as_of}: {run.path}")
