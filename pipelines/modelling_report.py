"""What the ``train`` and ``evaluate`` steps report: the run, the revenue forecast's
backtest and the text the CLI prints (:func:`format_run`; the summary, metric definitions,
guard messages and metric lines are :mod:`models.backtest` and
:mod:`models.backtest_report`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from models.backtest import Prepared
from models.backtest_report import metric_lines
from models.run_outputs import run_lines
from serving.forecast_run import backtest_lines


@dataclass
class ModellingRun:
    """What a step trained, measured and wrote; ``messages`` are for the user."""

    prepared: Prepared
    models: object
    summary: dict
    files: dict[str, Path] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)
    predictions: pd.DataFrame | None = None
    test_features: pd.DataFrame | None = None
    metrics: dict | None = None
    forecast_backtest: ForecastBacktest | None = None


@dataclass
class ForecastBacktest:
    """The revenue forecast's backtest that ``train`` ran (:mod:`serving.forecast_run`):
    one row per (period, origin, method) and the metrics; ``metrics`` records the data
    fingerprint and data end it was computed on, and ``messages`` why it is empty."""

    rows: pd.DataFrame
    metrics: dict
    messages: list[str] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """What the CLI prints: why there is no backtest, or its metrics per method."""
        return [*self.messages, *backtest_lines(self.metrics)]


def format_run(run: ModellingRun) -> str:
    """What the CLI prints: cutoff, training rows, guard decisions, the metric tables and
    the revenue forecast's backtest (``train``)."""
    lines = run_lines(run.summary, run.messages)
    if run.metrics:
        lines += metric_lines(run.metrics)
    if run.forecast_backtest is not None:
        lines += ["revenue forecast:", *run.forecast_backtest.lines()]
    return "\n".join(lines)
