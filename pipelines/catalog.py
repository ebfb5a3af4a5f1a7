"""The catalogue: every file dealcast reads or writes, named in this one place.

Folders come from the ``paths:`` section of ``params.yaml`` (:class:`Catalog`); ``dvc.yaml``
templates its deps and outs from the same keys. The names of the files inside those
folders (or inside a folder given with ``--out``) are the constants and functions below,
with the functions that read them back. No other module of ``pipelines/`` spells a file
name (``tests/test_architecture.py`` checks it), so a writer and its readers cannot drift.

Where (``paths:`` key) -> what, written by:

- ``raw``: the CRM folder (contract tables) -- generate, import
- ``truth``: the generator's hidden variables -- generate
- ``validation_report``: the validation report (JSON) -- validate
- ``features``: ``features.parquet``, ``labels.parquet`` -- features
- ``artifacts``: ``trained_model.json``, the trained pair's registry lineage -- train
- ``reports``/``backtest``: :func:`evaluation_files` of train's backtest and
  :func:`forecast_backtest_files`, the revenue forecast's backtest -- train
- any ``--out`` folder of ``evaluate``: :func:`evaluation_files` -- evaluate
- ``exports``: the set ``prioritised_leads_<DATE>/`` (CSV, XLSX, Parquet) -- score
- ``reports``/``forecast``: :func:`forecast_files` (CSV, XLSX, fan chart, per-group CSVs)
  -- forecast
- ``reports``/``funnel``: ``funnel_report_<DATE>.html`` -- report
- ``metrics``: the headline metrics (DVC ``metrics``, kept in git) -- metrics
- ``archive``: :func:`archive_partition` per kind and scoring day (what each team-wide
  score / forecast run said; history, not a DVC out) -- score, forecast
- ``reports``/``monitor``: :func:`monitor_files` (realised calibration) -- monitor
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.io import write_json_atomic

if TYPE_CHECKING:
    import pandas as pd

    from pipelines.params import PathsParams

#: The project's files and folders outside ``paths:`` (the current folder is the project).
PARAMS_FILE = "params.yaml"
MLFLOW_DB = "mlflow.db"
PREFECT_HOME = ".prefect"
LOCKS = ".dealcast"
LOCK_SUFFIX = ".lock"
DVC_PROJECT = ("dvc.yaml", ".dvc")  # a DVC project has both

#: Sub-folders of ``paths.reports``.
BACKTEST, FORECAST, FUNNEL = "backtest", "forecast", "funnel"
MONITOR = "monitor"

#: The archive: ``<paths.archive>/<kind>/day=<YYYY-MM-DD>/part.parquet`` (Hive-style).
ARCHIVE_LEADS, ARCHIVE_FORECAST = "leads", "forecast"
ARCHIVE_DAY = "day="
ARCHIVE_PART = "part.parquet"
MONITOR_STEM = "monitor"
MONITOR_TABLES = ("decile", "stage", "month", "next_stage", "forecast")

FEATURES_FILE = "features.parquet"
LABELS_FILE = "labels.parquet"
TRAINED_FILE = "trained_model.json"
MODEL_FOLDER = "model"
MODEL_FILE = "models.joblib"
FEATURE_LIST_FILE = "feature_list.json"
METRICS_FILE = "metrics.json"
PREDICTIONS_FILE = "test_predictions.parquet"
DRIVERS_FILE = "drivers.parquet"
CHARTS = ("reliability", "lift")
PNG = ".png"
LEADS_STEM = "prioritised_leads"
LEADS_FORMATS = ("csv", "xlsx", "parquet")
FORECAST_STEM = "forecast"
FAN_STEM = "forecast_fan"
FORECAST_BY_STEM = "forecast_by"
FORECAST_BACKTEST = "forecast_backtest"
REPORT_STEM = "funnel_report"

#: Artifact names inside an MLflow run (the run is a folder too).
RUN_METRICS = METRICS_FILE
RUN_FEATURE_LIST = FEATURE_LIST_FILE
RUN_PLOTS = "plots"
RUN_HISTORY = "history"
RUN_HISTORY_SUMMARY = "summary.json"
RUN_HISTORY_CLOSED = "closed_deals.parquet"
RUN_FORECAST_METRICS = f"{FORECAST_BACKTEST}.json"

_DATED = re.compile(r"^(?P<stem>.+)_(?P<date>\d{4}-\d{2}-\d{2})$")


@dataclass(frozen=True)
class Catalog:
    """Where each step reads and writes, from ``params.yaml`` ``paths:``."""

    paths: PathsParams

    @property
    def raw(self) -> Path:
        return self.paths.raw

    @property
    def truth(self) -> Path:
        return self.paths.truth

    @property
    def validation_report(self) -> Path:
        return self.paths.validation_report

    @property
    def features(self) -> Path:
        return self.paths.features

    @property
    def exports(self) -> Path:
        return self.paths.exports

    @property
    def trained(self) -> Path:
        """The lineage of the last ``train``: MLflow run, registered versions, promotion."""
        return self.paths.artifacts / TRAINED_FILE

    @property
    def backtest(self) -> Path:
        return self.paths.reports / BACKTEST

    @property
    def forecast(self) -> Path:
        return self.paths.reports / FORECAST

    @property
    def funnel(self) -> Path:
        return self.paths.reports / FUNNEL

    @property
    def archive(self) -> Path:
        """What each scoring day said (:func:`archive_partition`)."""
        return self.paths.archive

    @property
    def monitor(self) -> Path:
        return self.paths.reports / MONITOR

    @property
    def metrics(self) -> Path:
        """The headline metrics (a handful of numbers; DVC ``metrics``, kept in git)."""
        return self.paths.metrics


def features_files(folder: Path) -> dict[str, Path]:
    """What the ``features`` step writes into ``folder``."""
    return {"features": Path(folder) / FEATURES_FILE, "labels": Path(folder) / LABELS_FILE}


def evaluation_files(folder: Path) -> dict[str, Path]:
    """What a backtest (``evaluate --out``, train's backtest) writes into ``folder``."""
    folder = Path(folder)
    return {
        "metrics": folder / METRICS_FILE,
        "predictions": folder / PREDICTIONS_FILE,
        "drivers": folder / DRIVERS_FILE,
        **{name: folder / f"{name}{PNG}" for name in CHARTS},
    }


def model_folder(report: Path) -> Path:
    """Where a backtest report keeps its own model (trained at a past cutoff, never served)."""
    return Path(report) / MODEL_FOLDER


def model_files(folder: Path) -> dict[str, Path]:
    """The model file and its feature list in ``folder`` (see :func:`model_folder`)."""
    return {"models": Path(folder) / MODEL_FILE, "feature_list": Path(folder) / FEATURE_LIST_FILE}


def leads_stem(as_of: pd.Timestamp) -> str:
    """``prioritised_leads_<YYYY-MM-DD>``: the team-wide export set of ``as_of``."""
    return f"{LEADS_STEM}_{as_of.date().isoformat()}"


def leads_files(stem: str) -> dict[str, str]:
    """Format -> file name in the export set ``stem`` (the folder ``<exports>/<stem>/``)."""
    return {fmt: f"{stem}.{fmt}" for fmt in LEADS_FORMATS}


def forecast_files(folder: Path, as_of: pd.Timestamp, by: tuple[str, ...] = ()) -> dict[str, Path]:
    """What the ``forecast`` step writes into ``folder`` (its backtest is train's:
    :func:`forecast_backtest_files`): the table as CSV and XLSX, the fan chart and, per
    ``--by`` grouping, ``forecast_by_<column>_<DATE>.csv`` (keyed ``by <column>``; the
    column name keeps its letters, accents included, other characters become ``_``)."""
    day, folder = as_of.date().isoformat(), Path(folder)
    return {
        "forecast": folder / f"{FORECAST_STEM}_{day}.csv",
        "xlsx": folder / f"{FORECAST_STEM}_{day}.xlsx",
        "fan_chart": folder / f"{FAN_STEM}_{day}{PNG}",
        **{
            f"by {name}": folder / f"{FORECAST_BY_STEM}_{_file_safe(name)}_{day}.csv" for name in by
        },
    }


def _file_safe(name: str) -> str:
    """``name`` with every run of characters other than letters, digits, ``-`` and ``_``
    replaced by one ``_`` (non-ASCII letters stay)."""
    return re.sub(r"[^\w-]+", "_", name).strip("_") or "_"


def forecast_backtest_files(folder: Path) -> dict[str, Path]:
    """The revenue forecast's backtest (rows and metrics) that ``train`` writes into
    ``folder`` (:attr:`Catalog.backtest`): one of each, undated."""
    folder = Path(folder)
    return {
        "backtest": folder / f"{FORECAST_BACKTEST}.parquet",
        "backtest_metrics": folder / f"{FORECAST_BACKTEST}.json",
    }


def read_forecast_backtest(folder: Path) -> tuple[pd.DataFrame, dict] | None:
    """The forecast backtest in ``folder`` as (rows, metrics); None when a file is missing.
    ``OSError`` / ``ValueError`` when one cannot be read."""
    import pandas as pd

    files = forecast_backtest_files(folder)
    if not all(path.is_file() for path in files.values()):
        return None
    return pd.read_parquet(files["backtest"]), read_json(files["backtest_metrics"])


def report_file(folder: Path, as_of: pd.Timestamp) -> Path:
    """The funnel report of ``as_of`` in ``folder``."""
    return Path(folder) / f"{REPORT_STEM}_{as_of.date().isoformat()}.html"


def archive_partition(root: Path, kind: str, day: str) -> Path:
    """The one file of the ``kind`` (:data:`ARCHIVE_LEADS`, :data:`ARCHIVE_FORECAST`)
    partition of scoring day ``day`` (``YYYY-MM-DD``) under the archive ``root``."""
    return Path(root) / kind / f"{ARCHIVE_DAY}{day}" / ARCHIVE_PART


def archive_partitions(root: Path, kind: str) -> dict[str, Path]:
    """Scoring day -> partition file of ``kind`` under ``root``, in day order (none: {})."""
    folder = Path(root) / kind
    found = folder.glob(f"{ARCHIVE_DAY}*/{ARCHIVE_PART}") if folder.is_dir() else []
    return dict(sorted((p.parent.name.removeprefix(ARCHIVE_DAY), p) for p in found))


def monitor_files(folder: Path, as_of: pd.Timestamp) -> dict[str, Path]:
    """What ``monitor`` writes into ``folder``: ``monitor_<DATE>.json`` (the summary) and
    ``monitor_<table>_<DATE>.csv`` per table of :data:`MONITOR_TABLES`."""
    day, folder = as_of.date().isoformat(), Path(folder)
    return {
        "summary": folder / f"{MONITOR_STEM}_{day}.json",
        **{t: folder / f"{MONITOR_STEM}_{t}_{day}.csv" for t in MONITOR_TABLES},
    }


def lock_file(project: Path, name: str) -> Path:
    """``.dealcast/<name>.lock`` in the project folder."""
    return Path(project) / LOCKS / f"{name}{LOCK_SUFFIX}"


def latest_dated(folder: Path, stem: str, suffix: str, as_of: pd.Timestamp) -> Path | None:
    """``<folder>/<stem>_<YYYY-MM-DD><suffix>`` with the latest date not after ``as_of``.

    A set folder ``<stem>_<DATE>/<stem>_<DATE><suffix>`` (see :func:`pipelines.io.write_set`)
    counts too and wins over a flat file of the same date.
    """
    if not folder.is_dir():
        return None
    found = []
    for path in folder.glob(f"{stem}_*"):
        name, rank = path.name, 0
        if path.is_dir():
            path, name, rank = path / f"{name}{suffix}", f"{name}{suffix}", 1
        if not name.endswith(suffix) or not path.is_file():
            continue
        m = _DATED.match(name[: -len(suffix)])
        if m and m["stem"] == stem and m["date"] <= as_of.date().isoformat():
            found.append((m["date"], rank, path))
    return max(found)[2] if found else None


def latest_leads(folder: Path, as_of: pd.Timestamp) -> Path | None:
    """The latest team-wide prioritised-leads Parquet in ``folder`` not after ``as_of``."""
    return latest_dated(folder, LEADS_STEM, ".parquet", as_of)


def previous_leads(folder: Path, as_of: pd.Timestamp) -> Path | None:
    """The latest team-wide prioritised-leads Parquet dated before ``as_of``'s day."""
    return latest_dated(folder, LEADS_STEM, ".parquet", as_of - timedelta(days=1))


def previous_forecast(folder: Path, as_of: pd.Timestamp) -> Path | None:
    """The latest forecast table (CSV) dated before ``as_of``'s day."""
    return latest_dated(folder, FORECAST_STEM, ".csv", as_of - timedelta(days=1))


def latest_forecast(folder: Path, as_of: pd.Timestamp) -> Path | None:
    """The latest forecast table (CSV) in ``folder`` not after ``as_of``."""
    return latest_dated(folder, FORECAST_STEM, ".csv", as_of)


def fan_chart_file(folder: Path, forecast_file: Path | None) -> Path | None:
    """``forecast_fan_<DATE>.png`` of the forecast shown, else None: a fan chart of another
    date never appears beside a forecast (or in a back-dated report without one)."""
    if forecast_file is None:
        return None
    day = forecast_file.stem.removeprefix(f"{FORECAST_STEM}_")
    own = forecast_file.with_name(f"{FAN_STEM}_{day}{PNG}")
    return own if own.is_file() else None


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write_trained(path: Path, record: dict) -> Path:
    """The lineage record of a ``train`` (:func:`pipelines.modelling_artifacts.trained_record`)."""
    write_json_atomic(Path(path), record)
    return Path(path)


def write_metrics(path: Path, headline: dict) -> Path:
    """The headline metrics file (see :mod:`pipelines.headline`)."""
    write_json_atomic(Path(path), headline)
    return Path(path)


def find_params(start: Path, environ: dict | None = None) -> Path:
    """The project's params file for a notebook: ``$DEALCAST_PARAMS``, else :data:`PARAMS_FILE`
    in ``start`` or the nearest folder above it (Jupyter starts a notebook in notebooks/),
    else that name in ``start`` (whose absence :func:`pipelines.params.load_params` reports)."""
    given = (environ if environ is not None else os.environ).get("DEALCAST_PARAMS")
    if given:
        return Path(given).resolve()
    here = start.resolve()
    found = (d / PARAMS_FILE for d in (here, *here.parents) if (d / PARAMS_FILE).is_file())
    return next(found, here / PARAMS_FILE)
