"""``dealcast demo``: the whole job on built-in synthetic data, as ``make demo`` runs it.

generate → validate (+ funnel summary, the validation report) → features → Prefect flow
``train`` (backtest, fit, forecast backtest, register with the champion gate) → Prefect flow
``daily_score`` (load the CRM once, score the open pipeline with ``@champion``, export,
forecast; no fit) → the funnel report → the headline metrics → where to find everything.

Every step writes what its ``dvc.yaml`` stage writes (same step functions, same files from
the catalogue), so in a DVC project the demo ends with ``dvc commit``: it records what it
produced in ``dvc.lock`` and the DVC cache, and a ``dvc repro`` right after has nothing to
do. The outputs are deterministic (seeded), so on a fresh clone the recorded ``dvc.lock``
equals the committed one.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from pipelines.catalog import DVC_PROJECT, MLFLOW_DB, PARAMS_FILE, PREFECT_HOME, Catalog
from pipelines.params import Params
from pipelines.progress import step
from pipelines.steps import Echo, indent, run_generate, validate_folder, validation_as_of

if TYPE_CHECKING:
    from pipelines.reporting import ReportRun

STEPS = 7


def run_demo(p: Params, *, params_file: Path, echo: Echo) -> int:
    """Run the demo, printing progress; return the exit code."""
    started, where = time.perf_counter(), Catalog(p.paths)
    if not _generate_and_validate(p, where, echo=echo):
        return 2
    _features(p, where, echo=echo)
    # Prefect records every run in .prefect/; its own log lines would drown the progress.
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    trained, daily = _flows(params_file, echo=echo)
    echo(f"[6/{STEPS}] funnel report: funnel, conversion, model quality, top deals")
    report = _report(p, as_of=daily.scoring.as_of)
    if report.messages:
        echo(indent("\n".join(report.messages)))
    echo(f"[7/{STEPS}] headline metrics (what `dvc metrics show` prints)")
    echo(indent(_headline(where, params_file=params_file)))
    echo(_where(where, trained, daily))
    echo(f"funnel report: {report.path}")
    echo(f"demo finished in {time.perf_counter() - started:.0f} s")
    return 0


def _generate_and_validate(p: Params, where: Catalog, *, echo: Echo) -> bool:
    from pipelines.io import write_json_atomic
    from serving.funnel import format_summary, funnel_summary

    funnel, g = p.funnel.to_funnel(), p.generate
    as_of = pd.Timestamp(g.as_of, tz="UTC")
    echo(f"[1/{STEPS}] generating {g.deals:,} synthetic deals into {where.raw}/")
    written = run_generate(
        funnel=funnel, out=where.raw, truth=where.truth, n_deals=g.deals,
        seed=p.base.seed, start=pd.Timestamp(g.start, tz="UTC"), as_of=as_of,
        fmt=g.format, messy=g.messy, scenarios=g.scenarios, echo=lambda line: echo(indent(line)),
    )  # fmt: skip
    for name, (path, rows) in written.items():
        echo(f"      {name:<14}{rows:>10,} rows  {path}")
    echo(f"[2/{STEPS}] validating {where.raw}/ against the data contract")
    with step(f"validated {where.raw}"):
        result = validate_folder(
            where.raw, funnel=funnel, as_of=validation_as_of(p.validate_.as_of),
            horizon_days=p.train.horizon_days, test_days=p.evaluate.test_days,
        )  # fmt: skip
    write_json_atomic(where.validation_report, result.report.to_dict())
    echo(indent(result.report.to_text()))
    if result.data is None:
        return False
    summary = funnel_summary(result.data, funnel=funnel, data_end=as_of)
    echo(indent(f"funnel as of {as_of.date()}:\n" + format_summary(summary)))
    return True


def _features(p: Params, where: Catalog, *, echo: Echo) -> None:
    from pipelines.features_cmd import run_features

    echo(f"[3/{STEPS}] point-in-time features and labels into {where.features}/")
    run = run_features(
        folder=where.raw, out=where.features, funnel=p.funnel.to_funnel(),
        settings=p.features, as_of=None,
    )  # fmt: skip
    echo(indent(f"{len(run.as_of_dates)} weekly snapshots, {run.n_features} features"))


def _flows(params_file: Path, *, echo: Echo):
    """The Prefect flows ``train`` and ``daily_score``; what each returned."""
    from pipelines.flows import daily_score_flow, train_flow
    from pipelines.forecasting import format_forecast
    from pipelines.modelling_report import format_run
    from pipelines.scoring import format_score

    echo(f"[4/{STEPS}] Prefect flow 'train': backtests, fit on all data, register")
    started = time.perf_counter()
    trained = train_flow(params_file=str(params_file))
    echo(indent(format_run(trained.backtest or trained.final)))
    echo(indent("\n".join(trained.lines())))
    echo(indent(f"train flow: {time.perf_counter() - started:.0f} s"))
    echo(
        f"[5/{STEPS}] Prefect flow 'daily_score': score the open pipeline with @champion, "
        "forecast revenue (no fit)"
    )
    started = time.perf_counter()
    daily = daily_score_flow(params_file=str(params_file))
    echo(indent(format_score(daily.scoring)))
    echo(indent(format_forecast(daily.forecast)))
    echo(indent(f"daily_score flow: {time.perf_counter() - started:.0f} s"))
    return trained, daily


def _report(p: Params, *, as_of: pd.Timestamp) -> ReportRun:
    """Write the funnel report over everything the demo produced; return the run."""
    from pipelines.reporting import run_report

    where = Catalog(p.paths)
    with step("wrote the funnel report"):
        return run_report(
            folder=where.raw, out=where.funnel, funnel=p.funnel.to_funnel(),
            backtest=where.backtest, forecast=where.forecast,
            exports=where.exports, as_of=as_of, ece_bins=p.evaluate.ece_bins,
            currency=p.funnel.currency, change_threshold=p.score.change_threshold,
        )  # fmt: skip


def _headline(where: Catalog, *, params_file: Path) -> str:
    """Write the headline metrics, then record the run in DVC (see the module docstring)."""
    from pipelines.headline import format_metrics, run_metrics

    path, numbers = run_metrics(backtest=where.backtest, out=where.metrics)
    return f"{format_metrics(numbers)}\nwrote {path}\n{_dvc_commit(params_file)}"


def _dvc_commit(params_file: Path) -> str:
    """``dvc commit`` in a DVC project (the current folder) whose stages read the params the
    demo ran with (``dvc.yaml`` templates from ./params.yaml); what happened, in one line."""
    if not all(Path(name).exists() for name in DVC_PROJECT):
        return "not a DVC project (no dvc.yaml and .dvc/ here): nothing recorded in dvc.lock"
    if Path(params_file).resolve() != Path(PARAMS_FILE).resolve():
        return f"not a DVC project's run: dvc.yaml reads {PARAMS_FILE}, the demo {params_file}"
    done = subprocess.run(
        [sys.executable, "-m", "dvc", "commit", "--force", "--quiet"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        return f"dvc commit failed, dvc.lock not updated: {done.stderr.strip() or done.stdout}"
    return "recorded in dvc.lock (dvc commit): `dvc repro` now has nothing to do"


def _where(where: Catalog, trained, scored) -> str:
    backtest = trained.backtest.files.values() if trained.backtest else []
    files = [*scored.files.values(), *trained.final.files.values(), *backtest, where.metrics]
    tracking = os.environ.get("MLFLOW_TRACKING_URI", f"sqlite:///{MLFLOW_DB}")
    lines = [
        "where to look:",
        *(f"  {path}" for path in files),
        f"  MLflow runs and the model registry ({tracking}): `make mlflow-ui`, then "
        "open http://127.0.0.1:5000",
        f"  Prefect runs (kept in {os.environ.get('PREFECT_HOME', PREFECT_HOME)}): "
        "`make prefect-ui`, then open http://127.0.0.1:4200",
        "  reproducible pipeline: source .venv/bin/activate && dvc repro",
    ]
    return "\n".join(lines)
