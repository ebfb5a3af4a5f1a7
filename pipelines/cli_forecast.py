"""``dealcast forecast``: won revenue per month and quarter with P10/P50/P90, from the champion;
shows the backtest ``dealcast train`` wrote."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipelines.catalog import PARAMS_FILE, Catalog
from pipelines.cli_common import DataOpt, ParamsOpt, TrackOpt, handled, load_params, parse_when

AsOfOpt = Annotated[
    str | None,
    typer.Option(
        "--as-of", help="Forecast from this moment (default: the data's end, not the wall clock)."
    ),
]
OutOpt = Annotated[
    Path | None, typer.Option("--out", help="Output folder (default: <paths.reports>/forecast).")
]
ByOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--by",
        metavar="COLUMN",
        help="Also forecast per group of this column: owner, source, product, industry, "
        "country or another text column of the deals or accounts (repeat for several); "
        "writes forecast_by_<column>_<DATE>.csv and a sheet in the XLSX.",
    ),
]


@handled
def forecast_command(
    data: DataOpt = None,
    as_of: AsOfOpt = None,
    out: OutOpt = None,
    by: ByOpt = None,
    track: TrackOpt = True,
    params: ParamsOpt = Path(PARAMS_FILE),
) -> None:
    """Forecast won revenue (already won + open pipeline + new deals) per month and quarter
    with P10/P50/P90 from the champion; write forecast_<DATE>.csv and .xlsx and a fan chart,
    and with --by the same per owner or segment (from the same draws). Fits
    nothing: the backtest against the stage-weighted and rep-close-date forecasts is
    written by `dealcast train` and shown here when it was computed on this CRM."""
    from pipelines.forecasting import format_forecast, run_forecast
    from pipelines.tracking_champion import champion_of

    p = load_params(params)
    champion = champion_of(p)
    run = run_forecast(p, champion, folder=data or p.paths.raw,
                       out=out or Catalog(p.paths).forecast,
                       as_of=parse_when(as_of, option="--as-of"), by=tuple(by or ()))  # fmt: skip
    typer.echo(format_forecast(run))
    typer.echo(f"model: {champion.close_version}")
    if track:
        _track(run, p, model_version=champion.close_version)
    for name, path in run.files.items():
        typer.echo(f"wrote {name:<17} {path}")


def _track(run, p, *, model_version: str) -> None:
    """Log the forecast run to MLflow and say which run it is."""
    from pipelines.tracking import track_forecast

    typer.echo(f"mlflow run {track_forecast(run, p, model_version=model_version)}")
