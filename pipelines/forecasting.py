"""The ``forecast`` step: load the CRM -> score the open deals with the champion -> forecast
won revenue per month and quarter (P10/P50/P90) -> write; show the backtest ``train`` wrote.

Writes into ``out`` (:func:`pipelines.catalog.forecast_files`): ``forecast_<DATE>.csv``
(one row per period), the same as ``forecast_<DATE>.xlsx`` for revenue leaders (with an
``about`` sheet) and ``forecast_fan_<DATE>.png``; with ``--by owner`` (or any deal or
account segment column) also ``forecast_by_owner_<DATE>.csv`` and a sheet in the XLSX:
the forecast per group, from the same draws as the total (:mod:`serving.forecast_groups`).
Fits nothing: the backtest (one row per past period, origin and method, and its metrics)
is computed by ``train`` (:func:`pipelines.modelling.run_forecast_backtest`) into its
backtest folder; the forecast reads it back to show it, only when it was computed on this
CRM (same data fingerprint), else says so. The library is :mod:`serving.revenue` (on
:mod:`serving.forecast`, :mod:`serving.forecast_simulate` and :mod:`serving.forecast_run`).
Each run's total per period is archived (:func:`pipelines.archive.archive_forecast`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from crm.data import CRMData
from pipelines.archive import archive_forecast, not_archived
from pipelines.catalog import Catalog, forecast_files, read_forecast_backtest
from pipelines.io import write_bytes_atomic
from pipelines.params import Params
from pipelines.steps import StepError, data_end_of, fingerprint, load_for, spec_of
from serving.export import spreadsheet_safe
from serving.forecast_groups import (
    NOT_ADDITIVE,
    Grouping,
    UnknownGroupingError,
    group_text,
    grouping_of,
)
from serving.forecast_run import empty_backtest
from serving.forecast_xlsx import forecast_about, forecast_xlsx_bytes
from serving.revenue import NoWinHistoryError, fan_chart_png, forecast_at, forecast_text
from serving.score import FeatureMismatchError

log = logging.getLogger(__name__)
#: The settings of ``forecast:`` in params that :func:`serving.revenue.forecast_at` takes.
FORECAST_AT = {"months", "quarters", "draws", "min_stage_wins", "new_deal_origins",
               "calendar_prior_days"}  # fmt: skip


@dataclass
class ForecastRun:
    """What ``run_forecast`` computed and wrote; ``messages`` are for the user.

    ``backtest`` and ``metrics`` are train's forecast backtest of this CRM (empty when
    there is none, or only another CRM's: ``messages`` says so); ``groups`` the table of
    each ``--by`` grouping (:data:`serving.forecast_groups.COLUMNS`) by its name."""

    as_of: pd.Timestamp
    forecast: pd.DataFrame
    sigma: dict[str, float]  # the shared shock sd per period kind (month, quarter)
    open_deals: int
    backtest: pd.DataFrame
    metrics: dict
    files: dict[str, Path] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)
    data_fingerprint: str = ""
    groups: dict[str, pd.DataFrame] = field(default_factory=dict)
    model_version: str | None = None


def run_forecast(
    p: Params, champion, *, out: Path, as_of: pd.Timestamp | None, folder: Path | None = None,
    data: CRMData | None = None, by: tuple[str, ...] = (),
) -> ForecastRun:  # fmt: skip
    """Forecast with ``champion`` under params ``p`` and write into ``out``; raise
    ``StepError`` on unusable data or a ``by`` that is no segment column of the CRM. Fits
    nothing. ``data`` is the already validated CRM (the daily flow's), else the CRM of
    ``folder`` is loaded. The backtest shown is the one in train's backtest folder
    (:attr:`pipelines.catalog.Catalog.backtest`). ``by``: groupings (``owner``,
    ``industry``, ...) forecast per group from the same draws."""
    features, forecast, seed = p.features, p.forecast, p.base.seed
    horizon_days = champion.horizon_days or p.train.horizon_days
    data = load_for(p, folder) if data is None else data
    groupings = groupings_of(data, by, max_groups=p.forecast.max_groups)
    data_end = data_end_of(data, data_end=features.data_end)
    when = data_end if as_of is None else as_of
    try:
        table, sigma, n, groups = forecast_at(
            data, when, close=champion.close, funnel=p.funnel.to_funnel(),
            spec=spec_of(features), horizon_days=horizon_days, seed=seed, groupings=groupings,
            **forecast.model_dump(include=FORECAST_AT))  # fmt: skip
    except (FeatureMismatchError, NoWinHistoryError) as error:
        raise StepError(str(error)) from None
    run = ForecastRun(when, table, sigma, n, *_empty_backtest(), groups=groups,
                      model_version=getattr(champion, "close_version", None))  # fmt: skip
    run.data_fingerprint = fingerprint(data)
    if when < data_end:
        run.messages.append(f"forecast as of {when.date()}, before the data's end {data_end}")
    run.backtest, run.metrics = stored_backtest(
        Catalog(p.paths).backtest, run.data_fingerprint, run.messages
    )
    run.files = write_forecast(run, Path(out), horizon_days=horizon_days, forecast=forecast,
                               currency=p.funnel.currency, bom=p.score.csv_bom)  # fmt: skip
    try:
        archive_forecast(Catalog(p.paths).archive, run, horizon_days=horizon_days)
    except OSError as error:  # the forecast is written; say so rather than fail the run
        run.messages.append(not_archived(error))
        log.warning(run.messages[-1])
    return run


def groupings_of(data: CRMData, by: tuple[str, ...], *, max_groups: int) -> list[Grouping]:
    """The groupings asked for (each name once), or a ``StepError`` naming the column and
    the valid choices."""
    try:
        return [grouping_of(data, name, max_groups=max_groups) for name in dict.fromkeys(by)]
    except UnknownGroupingError as error:
        raise StepError(f"--by: {error}") from None


def _empty_backtest() -> tuple[pd.DataFrame, dict]:
    return empty_backtest(), {}


def stored_backtest(folder: Path, ours: str, messages: list[str]) -> tuple[pd.DataFrame, dict]:
    """Train's forecast backtest in ``folder`` if it was computed on the CRM whose data
    fingerprint is ``ours``; else empty, with a message saying why (never another CRM's)."""
    try:
        stored = read_forecast_backtest(folder)
    except (OSError, ValueError) as error:  # pyarrow and json errors are ValueErrors
        messages.append(f"no backtest shown: cannot read the forecast backtest in {folder}: "
                        f"{error}; `dealcast train` rewrites it")  # fmt: skip
        return _empty_backtest()
    if stored is None:
        messages.append(f"no backtest shown: none in {folder}; `dealcast train` writes it")
        return _empty_backtest()
    rows, metrics = stored
    theirs = metrics.get("data_fingerprint")
    if theirs != ours:
        messages.append(
            f"no backtest shown: the forecast backtest in {folder} was computed on another "
            f"CRM or extract (data fingerprint {theirs}, this CRM {ours}); run "
            "`dealcast train` on this CRM"
        )
        return _empty_backtest()
    messages += [f"(train's backtest) {m}" for m in metrics.get("messages", [])]
    return rows, metrics


def write_forecast(
    run: ForecastRun, out: Path, *, horizon_days: int, forecast, currency: str | None = None,
    bom: bool = False,
) -> dict:  # fmt: skip
    """The forecast CSV, its XLSX, its fan chart and a CSV per grouping, each written
    atomically. ``bom`` starts the group CSVs (which carry owner names) with a UTF-8 BOM."""
    files = forecast_files(out, run.as_of, tuple(run.groups))  # the catalogue's names
    table = run.forecast.assign(
        as_of=run.as_of,
        horizon_days=horizon_days,
        sigma=run.forecast["kind"].map(run.sigma),
        draws=forecast.draws,
        data_fingerprint=run.data_fingerprint,  # the report shows it only for this CRM
    )
    write_bytes_atomic(files["forecast"], table.to_csv(index=False).encode("utf-8"))
    write_bytes_atomic(
        files["xlsx"],
        forecast_xlsx(run, horizon_days=horizon_days, draws=forecast.draws, currency=currency),
    )
    write_bytes_atomic(files["fan_chart"], fan_chart_png(run.forecast, run.as_of))
    for by, frame in run.groups.items():
        write_bytes_atomic(files[f"by {by}"], group_csv(frame, bom=bom))
    return files


def forecast_xlsx(run: ForecastRun, *, horizon_days: int, draws: int, currency: str | None
                  ) -> bytes:  # fmt: skip
    """The forecast workbook (:mod:`serving.forecast_xlsx`) of ``run``."""
    about = forecast_about(
        as_of=run.as_of, horizon_days=horizon_days, draws=draws, sigma=run.sigma,
        open_deals=run.open_deals, currency=currency, metrics=run.metrics,
        messages=run.messages, model_version=run.model_version,
        data_fingerprint=run.data_fingerprint, by=tuple(run.groups),
    )  # fmt: skip
    return forecast_xlsx_bytes(run.forecast, about=about, as_of=run.as_of, currency=currency,
                               groups=run.groups)  # fmt: skip


def group_csv(frame: pd.DataFrame, *, bom: bool) -> bytes:
    """A grouping's table as CSV; the CRM's text (group values, owner names) can never
    become a spreadsheet formula (:func:`serving.export.spreadsheet_safe`)."""
    safe = frame.assign(**{c: frame[c].astype(str).map(spreadsheet_safe)
                           for c in ("group", "name")})  # fmt: skip
    return ("\ufeff" if bom else "").encode("utf-8") + safe.to_csv(index=False).encode("utf-8")


def format_forecast(run: ForecastRun) -> str:
    """What the CLI prints: the periods, train's backtest per method, then per grouping
    a short table of its groups."""
    text = forecast_text(run.forecast, as_of=run.as_of, open_deals=run.open_deals,
                         sigma=run.sigma, messages=run.messages, metrics=run.metrics)  # fmt: skip
    groups = [group_text(f, run.forecast, as_of=run.as_of) for f in run.groups.values()]
    return "\n".join([text, *groups, *([f"note: {NOT_ADDITIVE}"] if groups else [])])
