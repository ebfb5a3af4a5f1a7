"""The export's bytes: a CSV a person can check by hand, and a workbook sales ops can open,
filter and read, both the same bytes for the same frame."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pandas as pd
import pytest
from openpyxl import load_workbook

from serving.export import about_table, csv_bytes, xlsx_bytes
from serving.score import COLUMNS

AS_OF = pd.Timestamp("2026-06-29 23:54:12", tz="UTC")


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "rank": [1, 2],
            "owner_rank": [1, 1],
            "deal_id": pd.array(["D2", "D1"], dtype="str"),
            "deal_name": pd.array(["Nordwind GmbH – platform", None], dtype="str"),
            "account_id": pd.array(["A1", None], dtype="str"),
            "account_name": pd.array(["Nordwind GmbH", None], dtype="str"),
            "owner_id": pd.array(["U1", "U2"], dtype="str"),
            "owner_name": pd.array(["Jürgen Müller", "Zoë Dubois"], dtype="str"),
            "stage": pd.array(["proposal", "lead"], dtype="str"),
            "days_in_stage": pd.array([12, None], dtype="Int64"),
            "amount": [314000.0, np.nan],
            "p_win": [0.54234567, 1 / 3],
            "expected_value": [170296.54, np.nan],
            "next_stage": pd.array(["negotiation", None], dtype="str"),
            "p_next_stage": [0.86944, np.nan],
            "reasons_up": pd.array(["deal size 314,000; 11 touches", "no signal"], dtype="str"),
            "reasons_down": pd.array(["no competitor", ""], dtype="str"),
            "horizon_days": [180, 180],
            "as_of": pd.Series([AS_OF, AS_OF]).astype("datetime64[us, UTC]"),
            "model_version": "close v3",
            "next_stage_model_version": pd.array(["next v2", None], dtype="str"),
            "data_fingerprint": "0b0dd1ef8f5e009f",
        }
    )


def test_csv_is_fixed_text_a_person_can_check():
    expected = (
        ",".join(COLUMNS) + "\n"
        "1,1,D2,Nordwind GmbH – platform,A1,Nordwind GmbH,U1,Jürgen Müller,proposal,12,"
        "314000.00,0.5423,170296.54,negotiation,0.8694,"
        '"deal size 314,000; 11 touches",no competitor,180,2026-06-29T23:54:12Z,close v3,'
        "next v2,0b0dd1ef8f5e009f\n"
        "2,1,D1,,,,U2,Zoë Dubois,lead,,,0.3333,,,,no signal,,180,2026-06-29T23:54:12Z,close v3,,"
        "0b0dd1ef8f5e009f\n"
    )
    assert csv_bytes(_frame(), bom=False).decode("utf-8") == expected


def test_csv_column_order_is_fixed_whatever_the_frame_order():
    frame = _frame()
    shuffled = frame[list(reversed(frame.columns))]
    assert csv_bytes(shuffled, bom=True) == csv_bytes(frame, bom=True)


def test_a_missing_column_is_an_error():
    with pytest.raises(ValueError, match="p_win"):
        csv_bytes(_frame().drop(columns="p_win"), bom=False)


def _about() -> dict[str, str]:
    return about_table(
        as_of=AS_OF, horizon_days=180, priority="expected_value", rows=2,
        model_version="close v3", next_stage_model_version="next v2",
        data_fingerprint="0b0dd1ef8f5e009f",
    )  # fmt: skip


def test_workbook_has_a_filterable_formatted_leads_sheet():
    book = xlsx_bytes(_frame(), about=_about(), as_of=AS_OF, currency="EUR")
    wb = load_workbook(io.BytesIO(book))
    ws = wb["leads"]
    header = [c.value for c in ws[1]]
    # the columns equal on every row are said once, in the about sheet
    constant = {"horizon_days", "as_of", "model_version", "data_fingerprint"}
    assert header == [c for c in COLUMNS if c not in constant]
    assert all(c.font.bold for c in ws[1])
    assert ws.freeze_panes == "E2"  # header row and rank, owner_rank, deal_id, its name stay
    last = chr(ord("A") + len(header) - 1)
    assert ws.auto_filter.ref == f"A1:{last}{ws.max_row}" and ws.max_row == 3
    col = {name: i for i, name in enumerate(header)}
    first, second = list(ws.iter_rows(min_row=2))[:2]
    assert first[col["p_win"]].value == pytest.approx(0.54234567)
    assert first[col["p_win"]].number_format == "0.0%"
    assert first[col["amount"]].number_format == '#,##0.00 "EUR"'
    assert first[col["amount"]].value == 314000.0
    assert second[col["amount"]].value is None and second[col["account_id"]].value is None
    assert first[col["days_in_stage"]].value == 12
    assert first[col["reasons_up"]].alignment.wrap_text
    assert ws.column_dimensions[chr(ord("A") + col["reasons_up"])].width >= 60  # readable
    assert first[col["owner_name"]].value == "Jürgen Müller"
    notes = dict(wb["about"].iter_rows(values_only=True))
    assert "within 180 days" in notes["p_win"] and notes["close model"] == "close v3"
    assert notes["data fingerprint"] == "0b0dd1ef8f5e009f"


def test_times_are_date_cells_and_varying_columns_stay():
    frame = _frame().assign(model_version=["close v3", "close v4"])
    wb = load_workbook(io.BytesIO(xlsx_bytes(frame, about=_about(), as_of=AS_OF)))
    header = [c.value for c in wb["leads"][1]]
    assert "model_version" in header and "as_of" not in header
    changes = pd.DataFrame({"deal_id": ["D1"], "previous_as_of": [AS_OF]})
    wb = load_workbook(io.BytesIO(xlsx_bytes(frame, about=_about(), as_of=AS_OF, changes=changes)))
    cell = wb["changes"]["B2"]
    assert cell.value == AS_OF.tz_localize(None).to_pydatetime()
    assert cell.number_format == "yyyy-mm-dd hh:mm:ss"


def test_workbook_bytes_do_not_depend_on_the_clock():
    a = xlsx_bytes(_frame(), about=_about(), as_of=AS_OF)
    b = xlsx_bytes(_frame(), about=_about(), as_of=AS_OF)
    assert a == b
    assert {i.date_time for i in zipfile.ZipFile(io.BytesIO(a)).infolist()} == {
        (1980, 1, 1, 0, 0, 0)
    }
    props = load_workbook(io.BytesIO(a)).properties
    assert props.created == props.modified == AS_OF.tz_localize(None).to_pydatetime()


def test_workbook_lists_the_changes_since_the_last_export_in_a_sheet_of_their_own():
    from serving.changes import export_changes

    today = _frame()
    before = today.assign(
        stage=pd.array(["meeting", "lead"], dtype="str"),
        p_win=[0.54234567, 0.10],
    )
    deals = pd.DataFrame({"deal_id": ["D1", "D2"], "outcome": [None, None]})
    changes = export_changes(
        today, before, deals=deals, won_label="won", lost_label="lost", threshold=0.1
    )
    book = xlsx_bytes(today, about=_about(), as_of=AS_OF, changes=changes)
    wb = load_workbook(io.BytesIO(book))
    assert wb.sheetnames == ["leads", "changes", "about"]
    rows = list(wb["changes"].iter_rows(values_only=True))
    header = rows[0]
    got = {(r[header.index("change")], r[header.index("deal_id")]) for r in rows[1:]}
    assert got == {("stage moved", "D2"), ("p_win up", "D1")}
    cells = list(wb["changes"].iter_rows(min_row=2))
    p_col = header.index("p_win_change")
    assert all(r[p_col].number_format == "0.0%" for r in cells)
    assert wb["changes"].freeze_panes == "D2"  # header, change, deal id and name in view


def test_csv_with_a_bom_opens_in_excel_with_its_accents():
    data = csv_bytes(_frame(), bom=True)
    assert data.startswith(b"\xef\xbb\xbf") and data[3:] == csv_bytes(_frame(), bom=False)
    assert (
        "Jürgen Müller"
        in pd.read_csv(io.BytesIO(data), encoding="utf-8-sig")["owner_name"].tolist()
    )
