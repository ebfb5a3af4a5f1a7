"""Issue 16 item 1: a hostile deal id, owner or reason must never reach a spreadsheet as a
live formula. CSV cells get the OWASP ``'`` prefix, XLSX cells are strings (quote-prefixed),
the Parquet keeps the raw text, and numbers stay numbers."""

from __future__ import annotations

import csv
import io
import zipfile

import pandas as pd
from leads_fixtures import AS_OF, TEXT_COLUMNS, leads
from openpyxl import load_workbook

from pipelines.scoring import write_export
from serving.export import about_table, csv_bytes, spreadsheet_safe, xlsx_bytes

PAYLOADS = [
    '=HYPERLINK("http://x","x")',
    "+cmd|' /C calc'!A0",
    "@SUM(1+1)",
    "-2+3",
    "\t=1+1",
    "\r=1+1",
]


def _about(owners=()):
    return about_table(
        as_of=AS_OF, horizon_days=180, priority="expected_value", rows=1, model_version="m v1",
        next_stage_model_version=None, data_fingerprint="f", owners=owners,
    )  # fmt: skip


def test_spreadsheet_safe_prefixes_only_formula_starts():
    assert [spreadsheet_safe(p) for p in PAYLOADS] == ["'" + p for p in PAYLOADS]
    assert spreadsheet_safe("D-1") == "D-1"
    assert spreadsheet_safe("a=b") == "a=b"


def test_csv_text_cells_are_neutralised_in_every_text_column():
    frame = leads(PAYLOADS)
    rows = list(csv.DictReader(io.StringIO(csv_bytes(frame, bom=False).decode("utf-8"))))
    for row, payload in zip(rows, PAYLOADS, strict=True):
        for column in TEXT_COLUMNS:
            assert row[column] == "'" + payload, (column, row[column])
    assert rows[0]["amount"] == "-1250.50"  # a negative number is not text
    assert rows[0]["expected_value"] == "-312.62" or rows[0]["expected_value"] == "-312.63"


def test_xlsx_holds_no_formula_and_keeps_numbers():
    frame = leads(PAYLOADS)
    book = xlsx_bytes(frame, about=_about(owners=tuple(PAYLOADS)), as_of=AS_OF)
    with zipfile.ZipFile(io.BytesIO(book)) as archive:
        sheets = [n for n in archive.namelist() if n.startswith("xl/worksheets/")]
        xml = "".join(archive.read(n).decode("utf-8") for n in sheets)
    assert "<f>" not in xml and "<f " not in xml
    wb = load_workbook(io.BytesIO(book))
    ws = wb["leads"]
    header = [c.value for c in ws[1]]
    for r, payload in enumerate(PAYLOADS, start=2):
        for column in TEXT_COLUMNS:
            cell = ws.cell(row=r, column=header.index(column) + 1)
            assert cell.data_type == "s"  # XML reads a stored CR back as LF
            assert cell.value == payload.replace("\r", "\n")
            assert cell.quotePrefix, (column, payload)
    amount = ws.cell(row=2, column=header.index("amount") + 1)
    assert amount.data_type == "n" and amount.value == -1250.5
    owners = [row[1].value for row in wb["about"].iter_rows() if row[0].value == "owners"]
    assert owners and owners[0].startswith("=HYPERLINK") and wb["about"]["B1"].data_type == "s"


def test_parquet_keeps_raw_values_and_files_agree(tmp_path):
    frame = leads(PAYLOADS)
    files = write_export(frame, tmp_path, as_of=AS_OF, horizon_days=180, priority="expected_value")
    raw = pd.read_parquet(files["parquet"])
    assert raw["owner_id"].tolist() == PAYLOADS
    with files["csv"].open(encoding="utf-8", newline="") as fh:
        cells = [cell for row in csv.reader(fh) for cell in row]
    assert not [c for c in cells if c.startswith(("=", "+", "@", "\t", "\r"))]
    with zipfile.ZipFile(files["xlsx"]) as archive:
        assert "<f>" not in archive.read("xl/worksheets/sheet1.xml").decode("utf-8")
