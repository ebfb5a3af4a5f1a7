"""``dealcast monitor``: did yesterday's probabilities come true? What the archive says each
scoring day said, against what happened since (:mod:`pipelines.monitoring`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipelines.catalog import PARAMS_FILE
from pipelines.cli_common import DataOpt, ParamsOpt, handled, load_params, parse_when

AsOfOpt = Annotated[
    str | None,
    typer.Option(
        "--as-of",
        help="Judge with what was known at this moment (default: the data's end); later "
        "outcomes count as unknown, later scoring days are left out.",
    ),
]
OutOpt = Annotated[
    Path | None, typer.Option("--out", help="Output folder (default: <paths.reports>/monitor).")
]


def register(app: typer.Typer) -> None:
    """Add ``monitor`` to ``app``."""
    app.command("monitor")(monitor_command)


@handled
def monitor_command(
    data: DataOpt = None,
    as_of: AsOfOpt = None,
    out: OutOpt = None,
    params: ParamsOpt = Path(PARAMS_FILE),
) -> None:
    """Compare what each archived scoring day said (p_win, next stage, the revenue
    forecast) with what happened by the data's end: reliability by p_win decile and stage,
    log loss / AUC / ECE per scoring month next to the stage table's on the same deals,
    the next-stage hit rate, and the forecast's P10-P90 coverage and WAPE. Deals still
    open inside their horizon are unknown (left out, counted), never losses."""
    from pipelines.monitoring import format_monitor, run_monitor

    p = load_params(params)
    run = run_monitor(p, folder=data or p.paths.raw, as_of=parse_when(as_of, option="--as-of"),
                      out=out)  # fmt: skip
    typer.echo(format_monitor(run))
    for name, path in run.files.items():
        typer.echo(f"wrote {name:<10} {path}")
