"""The ``report`` step: load the CRM and whatever the pipeline has written so far, build the
funnel report (:mod:`serving.report`) and write ``funnel_report_<DATE>.html`` atomically
(every file name here is the catalogue's, :mod:`pipelines.catalog`).

Optional inputs, each skipped with a note when absent or unreadable: train's backtests
(``<reports>/backtest/metrics.json``, ``test_predictions.parquet`` and the revenue
forecast's ``forecast_backtest.parquet``, left out when computed on another CRM), the
forecast (the latest ``forecast_<DATE>.csv`` and a fan-chart PNG in the forecast folder)
and the latest team-wide prioritised-leads Parquet in the exports folder (the set
``prioritised_leads_<DATE>/prioritised_leads_<DATE>.parquet``, or a file
``prioritised_leads_<DATE>.parquet`` of the older flat layout). "Latest" means the latest
date in the name not after ``as_of``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from crm.schemas import LOST, WON, Funnel
from pipelines.catalog import (  # noqa: F401 - latest_dated re-exported
    evaluation_files,
    fan_chart_file,
    forecast_backtest_files,
    latest_dated,
    latest_forecast,
    latest_leads,
    previous_forecast,
    previous_leads,
    read_json,
    report_file,
)
from pipelines.io import writable_folder, write_text_atomic
from pipelines.steps import StepError, clock_of, data_end_of, fingerprint, load_usable
from serving.changes import export_changes, of_this_crm
from serving.report import ReportInputs, build_report

log = logging.getLogger(__name__)


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
    currency: str | None = None,
    change_threshold: float | None = None,
) -> ReportRun:
    """Build and write the report; ``StepError`` only when the CRM itself is unusable.

    ``as_of`` defaults to ``data_end`` (``features.data_end``), else the data's latest event.
    ``currency`` labels money; ``change_threshold`` (``score.change_threshold``) lists the
    shown export's changes since the one before it (None: not listed).
    """
    data = load_usable(folder, funnel=funnel, data_end=data_end, clock=clock or clock_of(None))
    when = as_of if as_of is not None else data_end_of(data, data_end=data_end)
    _check_as_of(data, when)
    writable_folder(Path(out), what="--out")
    messages: list[str] = []
    inputs = {"CRM": str(folder)}
    optional = _optional_inputs(fingerprint(data), when, backtest=backtest, forecast=forecast,
                                exports=exports, reader=_Reader(messages, inputs))  # fmt: skip
    report = ReportInputs(
        data=data, funnel=funnel, as_of=when, sources=inputs, ece_bins=ece_bins,
        currency=currency, **optional,
        changes=_changes(data, optional["leads"], exports, threshold=change_threshold),
    )  # fmt: skip
    path = report_file(out, when)
    write_text_atomic(path, build_report(report))
    log.debug("wrote %s", path)
    return ReportRun(path, when, inputs, messages)


def _optional_inputs(
    ours: str, when: pd.Timestamp, *, backtest: Path, forecast: Path, exports: Path, reader
) -> dict:
    """What the pipeline wrote so far, of this CRM (data fingerprint ``ours``), read as
    :class:`serving.report.ReportInputs` fields; what is left out gets a note."""
    messages = reader.messages
    leads_file = _same_crm(latest_leads(exports, when), ours, messages)
    forecast_file = latest_forecast(forecast, when)
    if _same_crm(forecast_file, ours, messages, what="forecast") != forecast_file:
        forecast, forecast_file = None, None  # another CRM's: no forecast, no fan
    backtest_files = evaluation_files(backtest)
    forecast_backtest = forecast_backtest_files(backtest)["backtest"]
    fan = forecast and fan_chart_file(forecast, forecast_file)
    return dict(  # the fields of ReportInputs
        metrics=reader("backtest metrics", backtest_files["metrics"], read_json),
        predictions=reader("backtest predictions", backtest_files["predictions"]),
        forecast_backtest=reader(
            "forecast backtest",
            _same_crm(forecast_backtest, ours, messages, what="forecast backtest"),
        ),
        forecast=reader("forecast", forecast_file, pd.read_csv),
        previous_forecast=forecast_file
        and reader(
            "previous forecast",
            previous_forecast(forecast_file.parent, _dated(forecast_file)),
            pd.read_csv,
        ),
        fan_chart=reader("fan chart", fan, Path.read_bytes),
        leads=reader("prioritised leads", leads_file),
    )


def _dated(path: Path) -> pd.Timestamp:
    """The date in a dated file or set name (``forecast_2026-06-29.csv`` -> that day)."""
    return pd.Timestamp(path.stem.rsplit("_", 1)[-1], tz="UTC")


def _changes(
    data, leads: pd.DataFrame | None, exports: Path, *, threshold: float | None
) -> pd.DataFrame | None:
    """The shown export's changes since the export before it (as ``score`` lists them),
    when that one is of this CRM (shares at least half its deals)."""
    if threshold is None or leads is None or leads.empty or "as_of" not in leads:
        return None
    path = previous_leads(exports, pd.Timestamp(leads["as_of"].iloc[0]))
    try:
        before = pd.read_parquet(path) if path is not None else None
    except (OSError, ValueError):
        return None
    if before is None or before.empty or not of_this_crm(before, data.deals):
        return None
    return export_changes(leads, before, deals=data.deals, won_label=WON, lost_label=LOST,
                          threshold=threshold)  # fmt: skip


def _check_as_of(data, when: pd.Timestamp) -> None:
    """``StepError`` when ``when`` is before the data's first deal or stage change: a
    funnel report of a moment with no history has nothing to show."""
    starts = [data.deals["created_at"].min()]
    if data.stage_history is not None and len(data.stage_history):
        starts.append(data.stage_history["entered_at"].min())
    first = max((s for s in starts if pd.notna(s)), default=None)
    if first is not None and when < first:
        raise StepError(
            f"--as-of {when} is before the data's history starts ({first}): there is no "
            "funnel to report yet; choose a later --as-of"
        )


#: What ``_same_crm`` checks -> (what the report leaves out, the command that remakes it).
_REMADE_BY = {
    "export": ("prioritised leads", "score"),
    "forecast": ("forecast", "forecast"),
    "forecast backtest": ("forecast backtest", "train"),
}


def _same_crm(
    path: Path | None, ours: str, messages: list[str], *, what: str = "export"
) -> Path | None:
    """``path`` (an export, forecast or forecast backtest) if it was made from this CRM
    (its ``data_fingerprint`` column), else None with a note: another CRM's ranked deals
    or forecast must never appear in this CRM's report. Files without the column pass."""
    if path is None:
        return None
    try:
        if path.suffix == ".csv":
            frame = pd.read_csv(path, usecols=lambda c: c == "data_fingerprint", dtype="str")
        else:
            frame = pd.read_parquet(path, columns=["data_fingerprint"])
    except (OSError, ValueError, KeyError):
        return path  # missing or unreadable: the reader below says so
    theirs = set(frame.get("data_fingerprint", pd.Series()).dropna().astype("str"))
    if theirs and theirs != {ours}:
        shown, command = _REMADE_BY[what]
        messages.append(
            f"left out the {shown}: the latest {what} is for another CRM ({path}: data "
            f"fingerprint {', '.join(sorted(theirs))}, this CRM {ours}), or an older extract "
            f"of it: run `dealcast {command}` on this CRM"
        )
        return None
    return path


class _Reader:
    """Reads optional inputs; a missing file is None, an unreadable one None plus a note."""

    def __init__(self, messages: list[str], used: dict[str, str]) -> None:
        self.messages, self.used = messages, used

    def __call__(self, what: str, path: Path | None, read=pd.read_parquet):
        if path is None or not path.is_file():
            return None
        try:
            value = read(path)
        except (OSError, ValueError) as error:  # pyarrow and json errors are ValueErrors
            self.messages.append(f"left out the {what}: cannot read {path}: {error}")
            return None
        self.used[what] = str(path)
        return value
