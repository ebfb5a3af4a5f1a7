"""``dealcast forecast``: won revenue per month and quarter with P10/P50/P90, from the champion;
shows the backtest ``dealcast train`` wrote."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipelines.catalog import PARAMS_FILE, Catalog
from pipelines.cli_common import DataOpt, ParamsOpt, TrackOpt, handled, load_params, parse_when


@handled
def forecast_command(
    data: DataOpt = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Forecast from this moment (default: the data's end, not the wall clock).",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Output folder (default: <paths.reports>/forecast)."),
    ] = None,
    track: TrackOpt = True,
    params: ParamsOpt = Path(PARAMS_FILE),
) -> None:
    """Forecast won revenue (already won + open pipeline + new deals) per month and quarter
    with P10/P50/P90 from the champion; write forecast_<DATE>.csv and a fan chart. Fits
    nothing: the backtest against the stage-weighted and rep-close-date forecasts is
    written by `dealcast train` and shown here when it was computed on this CRM."""
    from pipelines.forecasting import format_forecast, run_forecast
    from pipelines.steps import clock_of, spec_of
    from pipelines.tracking import load_champion

    p = load_params(params)
    champion = load_champion(
        close_model_name=p.evaluate.close_model_name,
        next_stage_model_name=p.evaluate.next_stage_model_name,
        spec=spec_of(p.features),
    )
    where = Catalog(p.paths)
    run = run_forecast(
        folder=data or p.paths.raw,
        out=out or where.forecast,
        backtest=where.backtest,
        funnel=p.funnel.to_funnel(),
        features=p.features,
        forecast=p.forecast,
        champion=champion,
        horizon_days=champion.horizon_days or p.train.horizon_days,
        as_of=parse_when(as_of, option="--as-of"),
        seed=p.base.seed,
        clock=clock_of(p.validate_.as_of),
    )
    typer.echo(format_forecast(run))
    typer.echo(f"model: {champion.close_version}")
    if track:
        from pipelines.tracking import experiment_name, track_forecast

        run_id = track_forecast(
            run,
            params=p.model_dump(by_alias=True, mode="json"),
            experiment=experiment_name(p.evaluate.experiment),
            model_version=champion.close_version,
        )
        typer.echo(f"mlflow run {run_id}")
    for name, path in run.files.items():
        typer.echo(f"wrote {name:<17} {path}")
