"""``dealcast demo``: the whole job on built-in synthetic data, as ``make demo`` runs it.

generate → validate (+ funnel summary) → Prefect flow ``train`` (features, backtest,
fit, register with the champion gate) → Prefect flow ``daily_score`` (score the open
pipeline with ``@champion``, export) → the funnel report → where to find everything.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from pipelines.params import Params
from pipelines.steps import Echo, indent, load_and_validate, run_generate

if TYPE_CHECKING:
    from pipelines.reporting import ReportRun

STEPS = 5


def run_demo(p: Params, *, params_file: Path, echo: Echo) -> int:
    """Run the demo, printing progress; return the exit code."""
    started = time.perf_counter()
    if not _generate_and_validate(p, echo=echo):
        return 2
    # Prefect records every run in .prefect/; its own log lines would drown the progress.
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    from pipelines.flows import daily_score_flow, train_flow
    from pipelines.forecasting import format_forecast
    from pipelines.modelling_report import format_run
    from pipelines.scoring import format_score

    echo(f"[3/{STEPS}] Prefect flow 'train': features, backtest, fit on all data, register")
    trained = train_flow(params_file=str(params_file))
    report = trained.backtest or trained.final
    echo(indent(format_run(report)))
    echo(indent("\n".join(trained.lines())))
    echo(
        f"[4/{STEPS}] Prefect flow 'daily_score': score the open pipeline with @champion, "
        "forecast revenue"
    )
    daily = daily_score_flow(params_file=str(params_file))
    scored = daily.scoring
    echo(indent(format_score(scored)))
    echo(indent(format_forecast(daily.forecast)))
    echo(f"[5/{STEPS}] funnel report: funnel, conversion, model quality, top deals")
    report = _report(p, as_of=scored.as_of)
    if report.messages:
        echo(indent("\n".join(report.messages)))
    echo(_where(p, trained, daily))
    echo(f"funnel report: {report.path}")
    echo(f"demo finished in {time.perf_counter() - started:.0f} s")
    return 0


def _generate_and_validate(p: Params, *, echo: Echo) -> bool:
    from serving.funnel import format_summary, funnel_summary

    funnel, g = p.funnel.to_funnel(), p.generate
    as_of = pd.Timestamp(g.as_of, tz="UTC")
    echo(f"[1/{STEPS}] generating {g.deals:,} synthetic deals into {p.paths.raw}/")
    written = run_generate(
        funnel=funnel, out=p.paths.raw, truth=p.paths.truth, n_deals=g.deals,
        seed=p.base.seed, start=pd.Timestamp(g.start, tz="UTC"), as_of=as_of,
        fmt=g.format, messy=g.messy, scenarios=g.scenarios, echo=lambda line: echo(indent(line)),
    )  # fmt: skip
    for name, (path, rows) in written.items():
        echo(f"      {name:<14}{rows:>10,} rows  {path}")
    echo(f"[2/{STEPS}] validating {p.paths.raw}/ against the data contract")
    result = load_and_validate(p.paths.raw, funnel=funnel, as_of=as_of)
    echo(indent(result.report.to_text()))
    if result.data is None:
        return False
    echo(
        indent(
            f"funnel as of {as_of.date()}:\n"
            + format_summary(funnel_summary(result.data, funnel=funnel, data_end=as_of))
        )
    )
    return True


def _report(p: Params, *, as_of: pd.Timestamp) -> ReportRun:
    """Write the funnel report over everything the demo produced; return the run."""
    from pipelines.reporting import run_report

    return run_report(
        folder=p.paths.raw, out=p.paths.reports, funnel=p.funnel.to_funnel(),
        backtest=p.paths.reports / "backtest", forecast=p.paths.reports / "forecast",
        exports=p.paths.exports, as_of=as_of, ece_bins=p.evaluate.ece_bins,
    )  # fmt: skip


def _where(p: Params, trained, scored) -> str:
    files = [*scored.files.values(), *(trained.backtest.files.values() if trained.backtest else [])]
    tracking = os.environ.get("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db")
    lines = [
        "where to look:",
        *(f"  {path}" for path in files),
        f"  MLflow runs and the model registry ({tracking}): `make mlflow-ui`, then "
        "open http://127.0.0.1:5000",
        f"  Prefect runs (kept in {os.environ.get('PREFECT_HOME', '.prefect')}): "
        "`make prefect-ui`, then open http://127.0.0.1:4200",
        "  reproducible pipeline: source .venv/bin/activate && dvc repro",
    ]
    return "\n".join(lines)
