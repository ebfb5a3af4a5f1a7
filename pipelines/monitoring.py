"""The ``monitor`` step: read the archive -> label what each scoring day said with what
happened by the data's end (the training labels' censoring) -> write the tables and a
summary into ``<paths.reports>/monitor`` (:func:`pipelines.catalog.monitor_files`).

The library is :mod:`serving.monitor`. Fits and scores nothing: it reads the archive
(:mod:`pipelines.archive`) and the CRM, so it takes a second or two.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from crm.data import CRMData
from crm.schemas import WON
from pipelines.archive import read_archive
from pipelines.catalog import (
    ARCHIVE_FORECAST,
    ARCHIVE_LEADS,
    Catalog,
    archive_partitions,
    monitor_files,
)
from pipelines.io import write_bytes_atomic, write_json_atomic
from pipelines.params import Params
from pipelines.steps import StepError, data_end_of, load_for
from serving.monitor import (
    counts,
    decile_table,
    forecast_summary,
    forecast_table,
    group_table,
    label_said,
    next_stage_table,
)


@dataclass
class MonitorRun:
    """What ``run_monitor`` found and wrote: the judged moment, row counts, the tables
    (:data:`pipelines.catalog.MONITOR_TABLES`) and the forecast summary per period kind."""

    data_end: pd.Timestamp
    counts: dict
    tables: dict[str, pd.DataFrame]
    forecast: dict
    seconds: float = 0.0
    files: dict[str, Path] = field(default_factory=dict)


def run_monitor(
    p: Params, *, folder: Path, as_of: pd.Timestamp | None = None, out: Path | None = None,
    data: CRMData | None = None,
) -> MonitorRun:  # fmt: skip
    """Judge the archive against the CRM of ``folder`` (or the validated ``data``) as it
    stood at ``as_of`` (default: the data's end; outcomes after it count as unknown) and
    write into ``out`` (default :attr:`Catalog.monitor`). ``StepError`` without an archive."""
    started, where = time.perf_counter(), Catalog(p.paths)
    said = _read(where.archive, ARCHIVE_LEADS, as_of)
    if said.empty:
        raise StepError(_no_archive(where.archive, as_of))
    data = load_for(p, folder) if data is None else data
    end = data_end_of(data, data_end=p.features.data_end)
    end = min(end, as_of) if as_of is not None else end
    run = judge(said, _read(where.archive, ARCHIVE_FORECAST, end), data, data_end=end,
                funnel=p.funnel.to_funnel(), n_bins=p.evaluate.ece_bins)  # fmt: skip
    run.files = write_monitor(run, Path(out) if out else where.monitor)
    run.seconds = time.perf_counter() - started
    return run


def _no_archive(root: Path, as_of: pd.Timestamp | None) -> str:
    some = bool(archive_partitions(root, ARCHIVE_LEADS))
    where = f"no archived scoring day up to {as_of:%Y-%m-%d}" if some else "no archive yet"
    return (
        f"{where} in {root}: nothing said to check. Every team-wide `dealcast score` (and "
        "`dealcast forecast`) run archives what it said; score past days with `dealcast "
        "score --as-of YYYY-MM-DD`, then run monitor again"
    )


def _read(root: Path, kind: str, until: pd.Timestamp | None) -> pd.DataFrame:
    try:
        return read_archive(root, kind, until=until)
    except (OSError, ValueError) as error:
        raise StepError(f"cannot read the archive in {root}: {error}") from None


def judge(
    said: pd.DataFrame, forecasts: pd.DataFrame, data: CRMData, *, data_end: pd.Timestamp,
    funnel, n_bins: int,
) -> MonitorRun:  # fmt: skip
    """The monitor tables of the archived ``said`` / ``forecasts`` against ``data``."""
    labelled = label_said(said, data.deals, data.table("stage_history"), funnel=funnel,
                          data_end=data_end)  # fmt: skip
    fc = forecast_table(forecasts, data.deals, won_label=WON, data_end=data_end)
    tables = {
        "decile": decile_table(labelled, n_bins=n_bins),
        "stage": group_table(labelled, "stage", n_bins=n_bins),
        "month": group_table(labelled, "month", n_bins=n_bins),
        "next_stage": next_stage_table(labelled),
        "forecast": fc,
    }
    return MonitorRun(data_end, counts(said, labelled), tables, forecast_summary(fc))


def write_monitor(run: MonitorRun, out: Path) -> dict[str, Path]:
    """Each table as CSV and the summary as JSON, each written atomically."""
    files = monitor_files(out, run.data_end)
    for name, table in run.tables.items():
        write_bytes_atomic(files[name], table.to_csv(index=False).encode("utf-8"))
    write_json_atomic(files["summary"], summary(run))
    return files


def summary(run: MonitorRun) -> dict:
    """The JSON summary: counts, the ``(all)`` rows of the month table, the next-stage hit
    rate and the forecast per period kind (NaN written as null)."""
    overall = run.tables["month"].iloc[-1].to_dict() if len(run.tables["month"]) else {}
    hits = run.tables["next_stage"]
    return _clean({
        "data_end": str(run.data_end), "counts": run.counts, "overall": overall,
        "next_stage_hit_rate": float(hits["hit_rate"].iloc[-1]) if len(hits) else None,
        "forecast": run.forecast,
    })  # fmt: skip


def _clean(value):
    """JSON-safe: NaN -> None, numpy scalars -> Python."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if hasattr(value, "item"):
        value = value.item()
    return None if isinstance(value, float) and math.isnan(value) else value


def format_monitor(run: MonitorRun) -> str:
    """What the CLI prints: counts, per scoring month model vs stage table, the deciles,
    the next-stage hit rate and the forecast's coverage and WAPE."""
    c = run.counts
    lines = [
        f"judged at {run.data_end:%Y-%m-%d}: {c['archived_rows']:,} archived rows of "
        f"{c['scoring_days']} scoring day(s); {c['known']:,} with a known outcome, "
        f"{c['unknown_open']:,} still open inside their horizon (unknown, left out), "
        f"{c['left_out']:,} left out (scored after that day or deal gone)",
        *_month_lines(run.tables["month"]),
        *_decile_lines(run.tables["decile"]),
        *_tail_lines(run),
    ]
    return "\n".join(lines)


def _month_lines(month: pd.DataFrame) -> list[str]:
    head = (f"{'month':<8}{'known':>7}{'open':>6}{'p_win':>7}{'won':>7}{'logloss':>9}"
            f"{'(stage)':>9}{'AUC':>7}{'(stage)':>9}{'ECE':>7}{'(stage)':>9}")  # fmt: skip
    rows = [
        f"{r.month:<8}{r.known:>7,}{r.unknown_open:>6,}{r.mean_p_win:>7.3f}{r.realised:>7.3f}"
        f"{r.model_log_loss:>9.3f}{r.stage_table_log_loss:>9.3f}{r.model_auc:>7.3f}"
        f"{r.stage_table_auc:>9.3f}{r.model_ece:>7.3f}{r.stage_table_ece:>9.3f}"
        + ("" if r.mature else "  partial")
        for r in month.itertuples()
    ]
    return ["realised by scoring month (model, then the stage table on the same rows):", head,
            *rows]  # fmt: skip


def _decile_lines(decile: pd.DataFrame) -> list[str]:
    pairs = ", ".join(f"{r.mean_p_win:.2f}->{r.realised:.2f}" for r in decile.itertuples())
    return [f"reliability by p_win decile (said -> came true): {pairs or 'none known yet'}"]


def _tail_lines(run: MonitorRun) -> list[str]:
    hits = run.tables["next_stage"]
    lines = []
    if len(hits) and hits["known"].iloc[-1]:
        last = hits.iloc[-1]
        lines.append(f"next stage: {last['hit_rate']:.1%} hit ({last['known']:,} known moves)")
    for kind, s in run.forecast.items():
        lines.append(
            f"forecast per {kind}: {s['periods']} past period(s), "
            f"{s['coverage_p10_p90']:.0%} inside P10-P90 (80% expected), "
            f"WAPE P50 {s['wape_p50']:.1%}, mean {s['wape_mean']:.1%}"
        )
    if not run.forecast:
        lines.append("forecast: no archived forecast period has ended yet")
    return lines
