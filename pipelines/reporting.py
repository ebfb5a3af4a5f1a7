"""The ``report`` step: load the CRM and whatever the pipeline has written so far, build the
funnel report (:mod:`serving.report`) and write ``funnel_report_<DATE>.html`` atomically.

Optional inputs, each skipped with a note when absent or unreadable: the backtest
(``<reports>/backtest/metrics.json`` and ``test_predictions.parquet``), the forecast
(``forecast_backtest.parquet``, the latest ``forecast_<DATE>.csv`` and a fan-chart PNG in
the forecast folder) and the latest team-wide prioritised-leads Parquet in the exports
folder (the set ``prioritised_leads_<DATE>/prioritised_leads_<DATE>.parquet``, or a file
``prioritised_leads_<DATE>.parquet`` of the older flat layout). "Latest" means the latest
date in the name not after ``as_of``.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from crm.schemas import Funnel
from pipelines.io import writable_folder, write_text_atomic

log = logging.getLogger(__name__)

STEM = "funnel_report"
_DATED = re.compile(r"^(?P<stem>.+)_(?P<date>\d{4}-\d{2}-\d{2})$")


@dataclass(frozen=True)
class ReportRun:
    """Where the report went, as of when, and notes for the user (inputs left out)."""

    path: Path
    as_of: pd.Timestamp
    inputs: dict[str, str]
    messages: list[str] = field(default_factory=list)


def run_report(
    *,
    folder: Path,
    out: Path,
    funnel: Funnel,
    backtest: Path,
    forecast: Path,
    exports: Path,
    as_of: pd.Timestamp | None,
    data_end: pd.Timestamp | None = None,
    ece_bins: int = 10,
    clock: pd.Timestamp | None = None,
) -> ReportRun:
    """Build and write the report; ``StepError`` only when the CRM itself is unusable.

    ``as_of`` defaults to ``data_end`` (``features.data_end``), else the data's latest event.
    """
    from pipelines.modelling_artifacts import fingerprint
    from pipelines.steps import clock_of, data_end_of, load_usable
    from serving.report import ReportInputs, build_report

    data = load_usable(folder, funnel=funnel, data_end=data_end, clock=clock or clock_of(None))
    when = as_of if as_of is not None else data_end_of(data, data_end=data_end)
    _check_as_of(data, when)
    writable_folder(Path(out), what="--out")
    messages: list[str] = []
    inputs = {"CRM": str(folder)}
    reader = _Reader(messages, inputs)
    leads_file = latest_dated(exports, "prioritised_leads", ".parquet", when)
    leads_file = _same_crm(leads_file, fingerprint(data), messages)
    forecast_file = latest_dated(forecast, "forecast", ".csv", when)
    if _same_crm(forecast_file, fingerprint(data), messages, what="forecast") != forecast_file:
        forecast, forecast_file = None, None  # another CRM's: no forecast, no backtest, no fan
    report = ReportInputs(
        data=data, funnel=funnel, as_of=when,
        metrics=reader.json("backtest metrics", backtest / "metrics.json"),
        predictions=reader.parquet("backtest predictions", backtest / "test_predictions.parquet"),
        forecast_backtest=reader.parquet(
            "forecast backtest", forecast and forecast / "forecast_backtest.parquet"
        ),
        forecast=reader.csv("forecast", forecast_file),
        fan_chart=reader.bytes("fan chart", forecast and fan_chart_file(forecast, forecast_file)),
        leads=reader.parquet("prioritised leads", leads_file),
        sources=inputs, ece_bins=ece_bins,
    )  # fmt: skip
    path = Path(out) / f"{STEM}_{when.date().isoformat()}.html"
    write_text_atomic(path, build_report(report))
    log.info("wrote %s", path)
    return ReportRun(path, when, inputs, messages)


def _check_as_of(data, when: pd.Timestamp) -> None:
    """``StepError`` when ``when`` is before the data's first deal or stage change: a
    funnel report of a moment with no history has nothing to show."""
    from pipelines.steps import StepError

    starts = [data.deals["created_at"].min()]
    if data.stage_history is not None and len(data.stage_history):
        starts.append(data.stage_history["entered_at"].min())
    first = max((s for s in starts if pd.notna(s)), default=None)
    if first is not None and when < first:
        raise StepError(
            f"--as-of {when} is before the data's history starts ({first}): there is no "
            "funnel to report yet; choose a later --as-of"
        )


def _same_crm(
    path: Path | None, ours: str, messages: list[str], *, what: str = "export"
) -> Path | None:
    """``path`` (an export or forecast) if it was made from this CRM (its
    ``data_fingerprint`` column), else None with a note: another CRM's ranked deals or
    forecast must never appear in this CRM's report. Files without the column pass."""
    if path is None:
        return None
    try:
        if path.suffix == ".csv":
            frame = pd.read_csv(path, usecols=lambda c: c == "data_fingerprint", dtype="str")
        else:
            frame = pd.read_parquet(path, columns=["data_fingerprint"])
    except (OSError, ValueError, KeyError):
        return path  # unreadable: the reader below says so
    theirs = set(frame.get("data_fingerprint", pd.Series()).dropna().astype("str"))
    if theirs and theirs != {ours}:
        command = "score" if what == "export" else "forecast"
        messages.append(
            f"left out the {'prioritised leads' if what == 'export' else 'forecast'}: the latest "
            f"{what} is for another CRM ({path}: data fingerprint {', '.join(sorted(theirs))}, "
            f"this CRM {ours}), or an older extract of it: run `dealcast {command}` on this CRM"
        )
        return None
    return path


def latest_dated(folder: Path, stem: str, suffix: str, as_of: pd.Timestamp) -> Path | None:
    """``<folder>/<stem>_<YYYY-MM-DD><suffix>`` with the latest date not after ``as_of``.

    A set folder ``<stem>_<DATE>/<stem>_<DATE><suffix>`` (see :func:`pipelines.io.write_set`)
    counts too and wins over a flat file of the same date.
    """
    if not folder.is_dir():
        return None
    found = []
    for path in folder.glob(f"{stem}_*"):
        name = path.name
        if path.is_dir():
            path, name = path / f"{name}{suffix}", f"{name}{suffix}"
            rank = 1
        else:
            rank = 0
        if not name.endswith(suffix) or not path.is_file():
            continue
        m = _DATED.match(name[: -len(suffix)])
        if m and m["stem"] == stem and m["date"] <= as_of.date().isoformat():
            found.append((m["date"], rank, path))
    return max(found)[2] if found else None


def fan_chart_file(folder: Path, forecast_file: Path | None) -> Path | None:
    """``forecast_fan_<DATE>.png`` of the forecast shown, else the newest ``*fan*.png``."""
    if forecast_file is not None:
        own = forecast_file.with_name(forecast_file.stem.replace("forecast_", "forecast_fan_", 1))
        if own.with_suffix(".png").is_file():
            return own.with_suffix(".png")
    fans = sorted(folder.glob("*fan*.png")) if folder.is_dir() else []
    return fans[-1] if fans else None


class _Reader:
    """Reads optional inputs; a missing file is None, an unreadable one None plus a note."""

    def __init__(self, messages: list[str], used: dict[str, str]) -> None:
        self.messages, self.used = messages, used

    def _read(self, what: str, path: Path | None, read):
        if path is None or not path.is_file():
            return None
        try:
            value = read(path)
        except (OSError, ValueError) as error:  # pyarrow and json errors are ValueErrors
            self.messages.append(f"left out the {what}: cannot read {path}: {error}")
            return None
        self.used[what] = str(path)
        return value

    def json(self, what: str, path: Path | None) -> dict | None:
        return self._read(what, path, lambda p: json.loads(p.read_text(encoding="utf-8")))

    def parquet(self, what: str, path: Path | None) -> pd.DataFrame | None:
        return self._read(what, path, pd.read_parquet)

    def csv(self, what: str, path: Path | None) -> pd.DataFrame | None:
        return self._read(what, path, pd.read_csv)

    def bytes(self, what: str, path: Path | None) -> bytes | None:
        return self._read(what, path, Path.read_bytes)
