"""The revenue forecast as an Excel workbook, for revenue leaders (pure: frames in, bytes out).

Sheets: ``months`` and ``quarters`` (one row per period: first and last day as date
cells, already won, open pipeline and not yet created (expected), the mean and
P10/P50/P90), one ``by <column>`` sheet per grouping asked for (the same per group, with
its open deals; :mod:`serving.forecast_groups`) and ``about`` (as of, horizon, method,
the backtest the forecast shows, currency, model and data). Money is rounded to whole
currency units and shown with the currency; the header row is bold and frozen. Text from
the CRM (owner names, segment values) is stored as text, never as a formula. The bytes
do not depend on the clock (:func:`serving.export.xlsx_bytes` does the same).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime

import pandas as pd

from serving.forecast import DAY
from serving.forecast_backtest import METHODS
from serving.forecast_groups import NOT_ADDITIVE, NOT_YET_CREATED, UNKNOWN
from serving.forecast_run import HORIZONS
from serving.xlsx_cells import as_text, deterministic_zip, money_format, style_table, utc_naive

#: (header, column of the forecast table or a rule); money columns are rounded to units.
MONEY = (
    ("already won", "already_won"),
    ("open pipeline (expected)", "open_expected"),
    ("not yet created (expected)", "new_expected"),
    ("mean (expected)", "forecast"),
    ("P10", "p10"),
    ("P50", "p50"),
    ("P90", "p90"),
)
DATE_FORMAT = "yyyy-mm-dd"
STAMP_FORMAT = "yyyy-mm-dd hh:mm:ss"
WIDTHS = {"period": 10, "kind": 9, "first day": 12, "last day": 12, "open deals": 11,
          "name": 24}  # fmt: skip
#: Human names of the backtest's methods and horizons (the JSON's keys are code names).
LABELS = {
    "dealcast": "dealcast",
    "stage_weighted": "stage-weighted (amount x stage win rate)",
    "rep_close_dates": "reps' close dates",
    "month_at_start": "months forecast at their first day",
    "quarter_at_start": "quarters forecast at their first day",
    "quarter_at_mid": "quarters forecast at mid-quarter",
}
#: Characters Excel refuses in a sheet name (which also has at most 31 characters).
BAD_SHEET = re.compile(r"[\[\]:*?/\\]")


def forecast_xlsx_bytes(
    table: pd.DataFrame,
    *,
    about: dict[str, object],
    as_of: pd.Timestamp,
    currency: str | None,
    groups: dict[str, pd.DataFrame] | None = None,
) -> bytes:
    """The workbook (see the module doc) of the forecast ``table``
    (:data:`serving.forecast_simulate.COLUMNS`), the group tables by ``by`` and the
    ``about`` rows (:func:`forecast_about`); ``as_of`` is the workbook's timestamp."""
    from openpyxl import Workbook

    wb = Workbook()
    money = money_format(currency, decimals=0)  # whole currency units
    ws = wb.active
    for n, kind in enumerate(("month", "quarter")):
        rows = table[table["kind"] == kind]
        if n and rows.empty:
            continue
        ws = ws if n == 0 else wb.create_sheet()
        ws.title = f"{kind}s"
        _sheet(ws, rows, _period_columns(), money=money, frozen=1)
    for by, frame in (groups or {}).items():
        columns = _group_columns(by, frame)
        _sheet(wb.create_sheet(sheet_name(f"by {by}")), frame, columns, money=money,
               frozen=2 if columns[1][0] == "name" else 1)  # fmt: skip
    _about_sheet(wb.create_sheet("about"), about)
    return deterministic_zip(wb, utc_naive(as_of))


def sheet_name(text: str) -> str:
    """``text`` as a legal, unique-enough sheet name (31 characters, no ``[]:*?/\\``)."""
    return BAD_SHEET.sub("_", text)[:31]


Column = tuple[str, Callable[[dict], object], str | None]


def _period_columns() -> list[Column]:
    return [
        ("period", lambda r: str(r["period"]), None),
        ("first day", lambda r: _day(r["start"]), DATE_FORMAT),
        ("last day", lambda r: _day(r["end"] - DAY), DATE_FORMAT),
        *_money_columns(),
    ]


def _group_columns(by: str, frame: pd.DataFrame) -> list[Column]:
    named = (frame["name"].astype(str) != frame["group"].astype(str)).any()
    return [
        (by, lambda r: str(r["group"]), None),
        *([("name", lambda r: str(r["name"]), None)] if named else []),
        *_period_columns()[:1],
        ("kind", lambda r: str(r["kind"]), None),
        *_period_columns()[1:3],
        ("open deals", lambda r: int(r["open_deals"]), "0"),
        *_money_columns(),
    ]


def _money_columns() -> list[Column]:
    return [(header, _rounded(column), "money") for header, column in MONEY]


def _rounded(column: str) -> Callable[[dict], int]:
    return lambda r: int(round(float(r[column])))


def _day(value) -> datetime:
    return utc_naive(value).replace(hour=0, minute=0, second=0)


def _sheet(ws, frame: pd.DataFrame, columns: list[Column], *, money: str, frozen: int) -> None:
    """A bold header, frozen below it and right of the first ``frozen`` columns, and a
    filter; each column's cells get its number format (``money``: the currency's)."""
    ws.append([header for header, _, _ in columns])
    for row in frame.to_dict("records"):
        ws.append([value(row) for _, value, _ in columns])
        as_text(ws[ws.max_row])
    style_table(
        ws, rows=len(frame),
        widths=[WIDTHS.get(header, max(14, len(header) + 2)) for header, _, _ in columns],
        formats=[money if f == "money" else f for _, _, f in columns], frozen=frozen,
    )  # fmt: skip


def _about_sheet(ws, about: dict[str, object]) -> None:
    from openpyxl.styles import Alignment, Font

    ws.append(["about", "value"])
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for key, value in about.items():
        ws.append([key, value])
        as_text(ws[ws.max_row])
        cell = ws.cell(ws.max_row, 2)
        if isinstance(value, datetime):
            cell.number_format = STAMP_FORMAT
        cell.alignment = Alignment(wrap_text=True, vertical="top", horizontal="left")
    ws.column_dimensions["A"].width = 30
    ws.column_dimensions["B"].width = 110
    ws.freeze_panes = "A2"


def forecast_about(
    *,
    as_of: pd.Timestamp,
    horizon_days: int,
    draws: int,
    sigma: dict[str, float],
    open_deals: int,
    currency: str | None,
    metrics: dict,
    messages: list[str],
    model_version: str | None = None,
    data_fingerprint: str = "",
    by: tuple[str, ...] = (),
) -> dict[str, object]:
    """What the ``about`` sheet says: the moment, the method, the backtest shown (or why
    none is), the money, the groupings and where the numbers came from."""
    about: dict[str, object] = {
        "as of (UTC)": utc_naive(as_of),
        "what": "won revenue per calendar month and quarter (UTC): already won in the "
        "period + open pipeline + deals not yet created",
        "open pipeline": f"{open_deals:,} deals open at as of; each one's probability of "
        "being won in the period from the close model's curve of P(won by day d)",
        "horizon": f"{horizon_days} days (the close model's p_win horizon)",
        "not yet created": "the mean of what deals created after past moments won in the "
        "same window, scaled by the CRM's growth",
        "range": f"Monte Carlo of {draws:,} draws with one shared shock on every deal's "
        f"log-odds (sd {sigma.get('month', 0):.3f} per month, {sigma.get('quarter', 0):.3f} "
        "per quarter): 1 draw in 10 is below P10, half below P50, 9 in 10 below P90",
        "mean (expected)": "already won + open pipeline + not yet created (expected values)",
        "money": f"rounded to whole units of {currency or 'the deal currency'}; parts may "
        "differ from the mean by a unit from rounding",
    }
    about |= _backtest_about(metrics, messages)
    for name in by:
        about[f"by {name}"] = (
            f"per {name}; deals with no {name} are the group {UNKNOWN}; revenue from deals "
            "not created "
            f"yet is the row {NOT_YET_CREATED} (the forecast draws it for the whole CRM "
            f"only, not per group); {NOT_ADDITIVE}"
        )
    about["close model"] = model_version or "unknown"
    about["data fingerprint"] = data_fingerprint
    return about


def _backtest_about(metrics: dict, messages: list[str]) -> dict[str, str]:
    """One row per method and horizon of train's backtest, or why none is shown."""
    methods = metrics.get("methods") or {}
    if not methods:
        why = [m for m in messages if m.startswith("no backtest shown")]
        return {"backtest": why[0] if why else "none shown"}
    out = {"backtest": f"train's backtest of this CRM, cutoff {str(metrics.get('cutoff'))[:10]}"
           ": the forecast made at past moments with what was known then, against what was "
           "won (WAPE: sum |error| / actual; bias: sum error / actual)"}  # fmt: skip
    for name in [m for m in METHODS if m in methods] + sorted(set(methods) - set(METHODS)):
        horizons = {"month_at_start": methods[name]} | methods[name].get("by_horizon", {})
        for key in [k for k in HORIZONS if k in horizons] + sorted(set(horizons) - {*HORIZONS}):
            h = horizons[key]
            out[f"backtest: {LABELS.get(name, name)}, {LABELS.get(key, key)}"] = (
                f"WAPE {h['wape']:.3f}, bias {h['bias']:+.1%}, {h['coverage_p10_p90']:.0%} of "
                f"{h['periods']} periods inside P10-P90"
            )
    return out
