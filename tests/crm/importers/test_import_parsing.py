"""Parsing export values (dates, amounts, booleans) and reading export files."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from importer_helpers import rows, utc

from crm.importers.common import NOWHERE, ImportInputError, ImportSummary
from crm.importers.parsing import (
    convert_currency,
    date_format_candidates,
    parse_bool,
    parse_numbers,
    parse_timestamps,
)
from crm.importers.reading import read_export


def ts(values, fmt=None, tz=None):
    out, bad = parse_timestamps(pd.Series(values), formats=fmt, timezone=tz, where="f.csv")
    return [None if pd.isna(v) else v for v in out], bad.tolist()


def test_localised_dates_with_declared_formats_and_zone():
    got, bad = ts(
        ["31.12.2024", "01.07.2024 17:30", "", "2024-07-01"],
        ["%d.%m.%Y %H:%M", "%d.%m.%Y"],
        "Europe/Berlin",
    )
    assert got == [
        utc("2024-12-30T23:00"),  # winter: UTC+1
        utc("2024-07-01T15:30"),  # summer: UTC+2
        None,
        utc("2024-06-30T22:00"),  # ISO is always accepted (Excel mixes typed dates in)
    ]
    assert bad == [False, False, False, False]


def test_us_dates_and_offsets():
    got, _ = ts(["12/31/2024 5:00 PM"], "%m/%d/%Y %I:%M %p", "America/New_York")
    assert got == [utc("2024-12-31T22:00")]
    got, _ = ts(["2024-03-01T09:30:00.000Z", "2024-03-01T09:30:00+02:00", "2024-03-01"])
    assert got == [utc("2024-03-01T09:30"), utc("2024-03-01T07:30"), utc("2024-03-01")]


def test_epoch_and_excel_serials():
    assert ts(["1709251200000"], "epoch_ms")[0] == [utc("2024-03-01")]
    assert ts(["45352.5"], "excel")[0] == [utc("2024-03-01T12:00")]


def test_undeclared_day_month_order_is_an_error_with_a_suggestion():
    with pytest.raises(ImportInputError, match="they look like '%d.%m.%Y'"):
        ts(["31.12.2024", "01.02.2024"])
    assert date_format_candidates(pd.Series(["03/04/2024"])) == ["%d/%m/%Y", "%m/%d/%Y"]
    assert date_format_candidates(pd.Series(["12/31/2024 5:00 PM"])) == ["%m/%d/%Y %I:%M %p"]


def test_a_few_unreadable_dates_are_flagged_not_fatal():
    got, bad = ts(["2024-01-01", "soon"])
    assert got == [utc("2024-01-01"), None] and bad == [False, True]
    with pytest.raises(ImportInputError, match="unknown time zone"):
        ts(["2024-01-01"], tz="Mars/Olympus")


def money(values, **kw):
    numbers, codes, bad = parse_numbers(pd.Series(values), where="f.csv", **kw)
    codes = [None if pd.isna(c) else c for c in codes]
    return [None if pd.isna(v) else v for v in numbers], codes, bad.tolist()


def test_amounts_with_symbols_separators_and_blanks():
    numbers, codes, bad = money(["€1.234,50", "1.234,50 EUR", "(300)", "", "-", "1,5"], decimal=",")
    assert numbers == [1234.5, 1234.5, -300.0, None, None, 1.5]
    assert codes[:2] == ["EUR", "EUR"] and bad == [False] * 6
    numbers, codes, bad = money(["$1,234.50", "USD 3,000", "1,5", "£7"])
    assert numbers == [1234.5, 3000.0, None, 7.0]  # "1,5" is not 15
    assert codes == ["USD", "USD", None, "GBP"] and bad == [False, False, True, False]


def test_decimal_comma_without_declaration_is_an_error():
    with pytest.raises(ImportInputError, match="declare decimal: ','"):
        money(["1.234,50", "7,25"])


@settings(max_examples=25, deadline=None)
@given(st.lists(st.decimals(min_value=0, max_value=10**9, places=2), min_size=1, max_size=30))
def test_formatted_amounts_round_trip(values):
    us = [f"{v:,.2f}" for v in values]
    de = [u.replace(",", "_").replace(".", ",").replace("_", ".") for u in us]
    expected = [float(v) for v in values]
    assert money(us)[0] == expected
    assert money(de, decimal=",")[0] == expected


def test_currency_conversion():
    amounts = pd.Series([100.0, 100.0, 100.0, None])
    codes = pd.Series(["eur", None, "CHF", "EUR"], dtype="str")
    out, unknown = convert_currency(amounts, codes, rates={"EUR": 1.1, "USD": 1.0}, default="usd")
    assert [None if pd.isna(v) else round(v, 6) for v in out] == [110.0, 100.0, None, None]
    assert unknown.tolist()[2] == "CHF"


def test_parse_bool():
    got = parse_bool(pd.Series(["true", "FALSE", "1", "0", "yes", "", "maybe"]))
    assert got.tolist() == [True, False, True, False, True, pd.NA, pd.NA]


def test_read_export_semicolons_cp1252_footer_and_blank_rows(tmp_path):
    path = tmp_path / "export.csv"
    text = 'Id;Name;Wert\r\n1;Müller;1,5\r\n;;\r\n2;"A;B";2\r\n\r\n"Total"\r\n'
    path.write_bytes(text.encode("cp1252"))
    summary = ImportSummary("test")
    frame = read_export(path, summary)
    assert rows(frame, "Id", "Name", "Wert") == [("1", "Müller", "1,5"), ("2", "A;B", "2")]
    assert frame["__line__"].tolist() == [2, 4]
    assert {r: x.count for r, x in summary.flows["export.csv"][NOWHERE].left_out.items()} == {
        "blank row": 2,
        "report footer (not a data row)": 1,
    }
    assert "Windows-1252" in summary.notes[0]


def test_read_export_missing_file(tmp_path):
    with pytest.raises(ImportInputError, match="does not exist"):
        read_export(tmp_path / "nope.csv", ImportSummary("test"))
