"""Workbook cells and bytes shared by the XLSX files (leads and forecast).

Pure helpers on openpyxl objects: text cells that can never become formulas, times as
UTC date cells, and a save that does not depend on the clock (same workbook, same bytes).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from datetime import datetime

import pandas as pd

#: Zip entry date of every part (the zip format's earliest): no clock in the bytes.
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
#: First characters a spreadsheet evaluates as a formula (OWASP "CSV injection").
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def as_text(cells) -> None:
    """Store every text cell of a row as a string, never a formula (openpyxl reads a str
    starting with ``=`` as one); quote-prefix the ones a spreadsheet would evaluate."""
    for cell in cells:
        if isinstance(cell.value, str):
            cell.data_type = "s"
            if cell.value.startswith(FORMULA_START):
                cell.quotePrefix = True


def utc_naive(value) -> datetime:
    """A naive datetime in UTC, whole seconds (Excel cells have no time zone)."""
    t = pd.Timestamp(value)
    t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    return t.tz_localize(None).floor("s").to_pydatetime()


def deterministic_zip(wb, stamp: datetime) -> bytes:
    """Save without openpyxl's clock (it stamps ``modified`` and zip entries with now)."""
    from openpyxl.writer.excel import ExcelWriter

    wb.properties.created = stamp
    wb.properties.modified = stamp
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        ExcelWriter(wb, archive).save()
    out = io.BytesIO()
    with (
        zipfile.ZipFile(raw) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for info in source.infolist():
            entry = zipfile.ZipInfo(info.filename, date_time=ZIP_DATE)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o600 << 16
            target.writestr(entry, source.read(info.filename))
    return out.getvalue()


def money_format(currency: str | None, *, decimals: int) -> str:
    """Excel's number format for money: thousands separators, ``decimals`` places and the
    currency code (``#,##0.00 "EUR"``); the plain number format without a currency."""
    digits = "#,##0" + ("." + "0" * decimals if decimals else "")
    code = "".join(ch for ch in (currency or "") if ch.isalnum() or ch in "$€£¥ ").strip()
    return f'{digits} "{code}"' if code else digits


def style_table(
    ws, *, rows: int, widths: Sequence[float], formats: Sequence[str | None], frozen: int
) -> None:
    """Finish a sheet holding a header row and ``rows`` data rows: bold header, column
    widths, each column's number format (None: none), frozen below the header and right of
    the first ``frozen`` columns, and a filter on every column."""
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    for cell in ws[1]:
        cell.font = Font(bold=True)
    for i, (width, number_format) in enumerate(zip(widths, formats, strict=True), 1):
        ws.column_dimensions[get_column_letter(i)].width = width
        if number_format:
            for (cell,) in ws.iter_rows(min_row=2, min_col=i, max_col=i):
                cell.number_format = number_format
    ws.freeze_panes = f"{get_column_letter(frozen + 1)}2"
    ws.auto_filter.ref = f"A1:{get_column_letter(len(widths))}{max(rows + 1, 1)}"
