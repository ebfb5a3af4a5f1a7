"""The prioritised-leads table as file bytes: CSV for machines, XLSX for sales ops.

Pure: frames in, bytes out (the shell writes them). Both are deterministic: the same frame
gives the same bytes.

CSV: UTF-8 (with a BOM when asked, so Excel reads accents right), comma separated,
``"\\n"`` line endings, the columns of :data:`serving.score.COLUMNS` in that order, cells
quoted only when they must be.
Probabilities have 4 decimals, money 2, days and ranks none; ``as_of`` is ISO 8601 UTC
(``2026-06-29T23:54:12Z``); missing values are empty cells.

Both files are meant for spreadsheets, so a text cell can never become a formula (OWASP
"CSV injection"): in the CSV a text cell that starts with ``=``, ``+``, ``-``, ``@``, a tab
or a carriage return gets a leading ``'`` (``=HYPERLINK(...)`` is written
``'=HYPERLINK(...)``); in the XLSX every text cell is stored as a string (never a formula)
and such cells are marked "quoted" so that editing them in Excel keeps them text. Number
columns stay numbers (a negative amount is ``-5.00``). The Parquet file, for machines,
keeps the raw values.

XLSX: sheet ``leads`` holds the ranked deals (bold header, frozen header row and columns up
to the deal's name, autofilter on every column so a rep filters on ``owner_id``, percentages,
money with the currency given, reasons wrapped, times as date cells in UTC); the columns
equal on every row (``as_of``, ``horizon_days``, model versions, data fingerprint) are left
to sheet ``about``, which says what the columns mean (what p_win is, the horizon, the
priority rule, the model versions, the data fingerprint); sheet ``changes``, when the shell
passes them, lists what changed since the previous export (:mod:`serving.changes`).
Workbook properties carry a fixed timestamp (the scoring moment) and zip entries a fixed
date, so the bytes do not depend on the clock.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pandas as pd

from serving.score import COLUMNS
from serving.xlsx_cells import (
    FORMULA_START,
    as_text,
    deterministic_zip,
    money_format,
    style_table,
    utc_naive,
)

PROBABILITIES = ("p_win", "p_next_stage", "p_win_before", "p_win_now", "p_win_change")
MONEY = ("amount", "expected_value")
WHOLE = ("rank", "owner_rank", "days_in_stage", "horizon_days", "rank_now")
STAMPS = ("as_of", "previous_as_of")
#: The same for every row of an export: said once in the ``about`` sheet, not in ``leads``.
ABOUT_ONLY = ("horizon_days", "as_of", "model_version", "next_stage_model_version",
              "data_fingerprint")  # fmt: skip
REASONS = ("reasons_up", "reasons_down")
WIDTHS = {
    "rank": 7,
    "owner_rank": 11,
    "deal_id": 14,
    "deal_name": 34,
    "account_id": 14,
    "account_name": 24,
    "owner_id": 12,
    "owner_name": 20,
    "stage": 13,
    "days_in_stage": 13,
    "amount": 14,
    "p_win": 9,
    "expected_value": 15,
    "next_stage": 13,
    "p_next_stage": 13,
    "reasons_up": 70,
    "reasons_down": 70,
    "horizon_days": 13,
    "as_of": 21,
    "model_version": 32,
    "next_stage_model_version": 28,
    "data_fingerprint": 19,
}


def spreadsheet_safe(text: str) -> str:
    """``text`` with a leading ``'`` when a spreadsheet would read it as a formula."""
    return "'" + text if text.startswith(FORMULA_START) else text


def csv_bytes(frame: pd.DataFrame, *, bom: bool) -> bytes:
    """The export as CSV bytes (see module docstring); ``bom`` starts them with the UTF-8
    byte-order mark, without which Excel reads "Jürgen" as "JÃ¼rgen"."""
    columns = _columns(frame)
    formats = [_formatter(c) for c in columns]
    lines = [_csv_line(columns)]
    values = [frame[c].astype("object").tolist() for c in columns]
    for row in zip(*values, strict=True):
        lines.append(_csv_line([fmt(v) for fmt, v in zip(formats, row, strict=True)]))
    return ("\ufeff" if bom else "").encode("utf-8") + "".join(lines).encode("utf-8")


def _csv_line(cells: list[str]) -> str:
    """One CSV record: a cell is quoted when it holds a comma, quote, CR or LF (the csv
    module leaves a lone CR unquoted when the line terminator is LF, which splits the row
    for every reader)."""
    return ",".join(_quoted(c) if any(ch in c for ch in ',"\r\n') else c for c in cells) + "\n"


def _quoted(cell: str) -> str:
    return '"' + cell.replace('"', '""') + '"'


def _columns(frame: pd.DataFrame) -> list[str]:
    missing = [c for c in COLUMNS if c not in frame]
    if missing:
        raise ValueError(f"the export lacks columns {missing}")
    return list(COLUMNS)


def _missing(value) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _formatter(column: str) -> Callable[[object], str]:
    if column in PROBABILITIES:
        return lambda v: "" if _missing(v) else f"{float(v):.4f}"
    if column in MONEY:
        return lambda v: "" if _missing(v) else f"{float(v) + 0.0:.2f}"
    if column in WHOLE:
        return lambda v: "" if _missing(v) else str(int(v))
    if column == "as_of":
        return lambda v: "" if _missing(v) else iso_utc(v)
    return lambda v: "" if _missing(v) else spreadsheet_safe(str(v))


def iso_utc(value) -> str:
    """A timestamp as ``YYYY-MM-DDTHH:MM:SSZ`` (UTC; naive means UTC)."""
    t = pd.Timestamp(value)
    t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def xlsx_bytes(
    frame: pd.DataFrame,
    *,
    about: dict[str, str],
    as_of: pd.Timestamp,
    changes: pd.DataFrame | None = None,
    currency: str | None = None,
) -> bytes:
    """The export as an Excel workbook (see module docstring).

    ``about`` is the key -> text table of the ``about`` sheet; ``as_of`` becomes the
    workbook's created/modified time. ``changes`` (:func:`serving.changes.export_changes`),
    when given, becomes the sheet ``changes`` right after ``leads``. ``currency`` (e.g.
    ``EUR``) is shown in the money cells' format; the values stay plain numbers.
    """
    from openpyxl import Workbook

    wb = Workbook()
    money = money_format(currency, decimals=2)
    _leads_sheet(wb.active, frame, money=money)
    if changes is not None:
        _table_sheet(wb.create_sheet("changes"), changes, list(changes.columns), money=money)
    notes = wb.create_sheet("about")
    for key, text in about.items():
        notes.append([key, text])
        as_text(notes[notes.max_row])
    notes.column_dimensions["A"].width = 26
    notes.column_dimensions["B"].width = 110
    stamp = pd.Timestamp(as_of).tz_convert("UTC").tz_localize(None).floor("s").to_pydatetime()
    return deterministic_zip(wb, stamp)


def _leads_sheet(ws, frame: pd.DataFrame, *, money: str) -> None:
    """The ranked deals, without the columns that are the same on every row (the ``about``
    sheet states them once)."""
    ws.title = "leads"
    columns = [
        c for c in _columns(frame) if not (c in ABOUT_ONLY and frame[c].nunique(dropna=False) <= 1)
    ]
    _table_sheet(ws, frame, columns, money=money)


def _table_sheet(ws, frame: pd.DataFrame, columns: list[str], *, money: str) -> None:
    """A bold, filterable table of ``columns``, frozen below the header and right of the
    deal id; numbers and times stay numbers and times; reasons wrap."""
    from openpyxl.styles import Alignment

    ws.append(columns)
    values = [frame[c].astype("object").tolist() for c in columns]
    converters = [_cell_value(c) for c in columns]
    for row in zip(*values, strict=True):
        ws.append([conv(v) for conv, v in zip(converters, row, strict=True)])
        as_text(ws[ws.max_row])
    key = "deal_name" if "deal_name" in columns else "deal_id"  # the deal stays in view
    style_table(
        ws, rows=len(frame), widths=[WIDTHS.get(c, 14) for c in columns],
        formats=[money if c in MONEY else _number_format(c) for c in columns],
        frozen=columns.index(key) + 1 if key in columns else 0,
    )  # fmt: skip
    wrap = Alignment(wrap_text=True, vertical="top")
    for i, column in enumerate(columns, 1):
        if column in REASONS:
            for (cell,) in ws.iter_rows(min_row=2, min_col=i, max_col=i):
                cell.alignment = wrap


def _cell_value(column: str) -> Callable[[object], object]:
    if column in PROBABILITIES or column in MONEY:
        return lambda v: None if _missing(v) else float(v)
    if column in WHOLE:
        return lambda v: None if _missing(v) else int(v)
    if column in STAMPS:  # a date-time cell (UTC; Excel has no time zones)
        return lambda v: None if _missing(v) else utc_naive(v)
    return lambda v: None if _missing(v) else str(v)


def _number_format(column: str) -> str | None:
    if column in STAMPS:
        return "yyyy-mm-dd hh:mm:ss"
    if column in PROBABILITIES:
        return "0.0%"
    if column in MONEY:
        return "#,##0.00"
    return None


def about_table(
    *,
    as_of: pd.Timestamp,
    horizon_days: int,
    priority: str,
    rows: int,
    model_version: str,
    next_stage_model_version: str | None,
    data_fingerprint: str,
    owners: tuple[str, ...] = (),
) -> dict[str, str]:
    """What the ``about`` sheet says: the meaning of the scores and where they came from."""
    rule = (
        "expected_value = p_win x amount, highest first (ties: p_win, then deal_id)"
        if priority == "expected_value"
        else "p_win, highest first (ties: expected_value, then deal_id)"
    )
    return {
        "scored as of": iso_utc(as_of),
        "p_win": f"probability that the deal is won within {horizon_days} days of the as-of "
        "moment (calibrated; 0.25 = one in four such deals is won)",
        "expected_value": "p_win x amount (empty when the deal has no amount)",
        "next_stage": "the most likely next state (an open stage, won or lost); "
        "p_next_stage is its probability",
        "days_in_stage": "whole days since the deal entered its current stage",
        "deal_name / account_name / owner_name": "names from the CRM (empty when it has none); "
        "the ids are the keys",
        "reasons_up / reasons_down": "the strongest drivers raising / lowering p_win for this deal",
        "priority": rule,
        "rank / owner_rank": "rank over the whole team / within the deal's owner",
        "owners": ", ".join(owners) if owners else "all",
        "deals": str(rows),
        "close model": model_version,
        "next-stage model": next_stage_model_version or "none",
        "data fingerprint": data_fingerprint,
    }
