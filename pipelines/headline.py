"""The headline metrics file (:mod:`models.headline`), from the metrics of the two
backtests in train's backtest folder. The full tables stay in each backtest's metrics JSON
(a DVC out, not a DVC metric: hundreds of numbers would drown ``dvc exp show``)."""

from __future__ import annotations

import logging
from pathlib import Path

from models.headline import format_metrics, headline  # noqa: F401 - format_metrics re-exported
from pipelines.catalog import evaluation_files, forecast_backtest_files, read_json, write_metrics

log = logging.getLogger(__name__)


def run_metrics(*, backtest: Path, out: Path) -> tuple[Path, dict]:
    """Read both backtests' metrics in train's ``backtest`` folder (a missing one gives
    nulls), write ``out``."""
    trees = {}
    for name, path in (
        ("close", evaluation_files(backtest)["metrics"]),
        ("forecast", forecast_backtest_files(backtest)["backtest_metrics"]),
    ):
        if path.is_file():
            trees[name] = read_json(path)
        else:
            log.warning("no %s backtest metrics at %s: its headline numbers are null", name, path)
    numbers = headline(trees.get("close"), trees.get("forecast"))
    return write_metrics(out, numbers), numbers
