"""Reading and typing a CRM folder: files, encodings, separators, time zones, numbers."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from crm.schemas import CONTRACT, TIMESTAMP_DTYPE, Funnel, dtype_of

UTC = "UTC"


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz=UTC)


# --------------------------------------------------------------------------- valid data


def test_valid_folder_loads_without_findings(crm_dir):
    result = crm_dir.run()
    assert result.report.ok
    assert result.report.findings == []
    assert set(result.sources) == {"accounts", "deals", "stage_history", "touchpoints"}
    assert result.sources["deals"].name == "deals.csv"
    data = result.data
    assert data is not None
    assert (len(data.deals), len(data.stage_history), len(data.touchpoints)) == (3, 7, 4)


def test_contract_columns_have_canonical_dtypes(crm_dir):
    data = crm_dir.run().data
    for name in data.present():
        frame = data.table(name)
        for column in CONTRACT[name].columns:
            if column.name in frame:
                assert str(frame[column.name].dtype) == dtype_of(column.kind), (name, column)


def test_attributes_are_kept_and_typed(crm_dir):
    deals = crm_dir.valid["deals"]
    deals = deals.replace("lead_score\n", "lead_score,segment\n")
    deals = "\n".join(
        line + ("" if i == 0 else f",seg{i % 2}") for i, line in enumerate(deals.splitlines())
    )
    data = crm_dir.run(deals=deals + "\n").data
    assert data.deals["lead_score"].dtype == "float64"
    assert data.deals["lead_score"].tolist() == [80.0, 35.0, 60.0]
    assert isinstance(data.deals["segment"].dtype, pd.CategoricalDtype)


def test_optional_tables_may_be_absent(crm_dir):
    result = crm_dir.run(accounts=None, stage_history=None, touchpoints=None)
    assert result.report.ok, result.report.to_text()
    assert result.data.present() == ("deals",)
    assert result.data.accounts is None and result.data.touchpoints is None


def test_missing_values_stay_missing_and_nothing_is_dropped(crm_dir):
    data = crm_dir.run().data
    assert data.deals["closed_at"].isna().tolist() == [False, False, True]
    assert data.deals["outcome"].isna().tolist() == [False, False, True]
    assert data.touchpoints["deal_id"].isna().tolist() == [False, False, True, False]


# --------------------------------------------------------------------------- time


def test_offsets_are_converted_to_utc_and_naive_is_utc(crm_dir):
    deals = crm_dir.set_cell(crm_dir.valid["deals"], 2, "created_at", "2024-01-01T10:00:00+02:00")
    deals = crm_dir.set_cell(deals, 3, "created_at", "2024-01-01 10:00:00")
    deals = crm_dir.set_cell(deals, 4, "created_at", "2024-01-01T10:00:00-05:00")
    result = crm_dir.run(deals=deals, stage_history=None)
    assert result.report.ok, result.report.to_text()
    created = result.data.deals["created_at"]
    assert str(created.dtype) == TIMESTAMP_DTYPE
    assert created.tolist() == [
        ts("2024-01-01 08:00"),
        ts("2024-01-01 10:00"),
        ts("2024-01-01 15:00"),
    ]


def test_dates_are_midnight_utc(crm_dir):
    data = crm_dir.run().data
    assert data.deals["expected_close_date"].iloc[0] == ts("2024-03-01")
    assert data.accounts["created_at"].iloc[0] == ts("2023-01-10")


def test_all_ambiguous_day_month_dates_are_an_error(crm_dir, finding):
    deals = crm_dir.set_cell(crm_dir.valid["deals"], 3, "expected_close_date", "03/04/2024")
    deals = crm_dir.set_cell(deals, 4, "expected_close_date", "05/06/2024")
    f = finding(crm_dir.run(deals=deals).report, "ambiguous_date_format")
    assert (f.severity, f.table, f.column, f.rows) == (
        "error",
        "deals",
        "expected_close_date",
        (3, 4),
    )
    assert "03/04/2024 could be 3 April or 4 March" in f.message
    assert "YYYY-MM-DD" in f.hint


def test_day_first_dates_are_named_as_such(crm_dir, finding):
    deals = crm_dir.set_cell(crm_dir.valid["deals"], 2, "created_at", "25/01/2024")
    deals = crm_dir.set_cell(deals, 3, "created_at", "03/01/2024")
    f = finding(crm_dir.run(deals=deals, stage_history=None).report, "ambiguous_date_format")
    assert f.rows == (2, 3)
    assert "DD/MM/YYYY" in f.message and "25/01/2024" in f.message


def test_month_first_dates_are_named_as_such(crm_dir, finding):
    deals = crm_dir.set_cell(crm_dir.valid["deals"], 4, "created_at", "01.25.2024")
    f = finding(crm_dir.run(deals=deals, stage_history=None).report, "ambiguous_date_format")
    assert f.rows == (4,) and "MM.DD.YYYY" in f.message


def test_garbage_timestamp_is_unparseable(crm_dir, finding):
    history = crm_dir.set_cell(crm_dir.valid["stage_history"], 5, "entered_at", "last tuesday")
    f = finding(crm_dir.run(stage_history=history).report, "unparseable_value")
    assert (f.table, f.column, f.rows, f.file) == (
        "stage_history",
        "entered_at",
        (5,),
        "stage_history.csv",
    )
    assert "'last tuesday'" in f.message


def test_unparseable_cells_are_not_reported_again_as_missing(crm_dir):
    deals = crm_dir.set_cell(crm_dir.valid["deals"], 3, "created_at", "soon")
    report = crm_dir.run(deals=deals).report
    assert "unparseable_value" in report.rules()
    assert "missing_value" not in report.rules()


# --------------------------------------------------------------------------- numbers


@pytest.mark.parametrize("value", ["1,234.50", "€1200", "12k"])
def test_formatted_numbers_are_unparseable(crm_dir, finding, value):
    deals = crm_dir.set_cell(crm_dir.valid["deals"], 3, "amount", f'"{value}"')
    f = finding(crm_dir.run(deals=deals).report, "unparseable_value")
    assert (f.table, f.column, f.rows) == ("deals", "amount", (3,))
    assert value in f.message


def test_thousands_separator_is_explained(crm_dir, finding):
    deals = crm_dir.set_cell(crm_dir.valid["deals"], 3, "amount", '"1,234.50"')
    f = finding(crm_dir.run(deals=deals).report, "unparseable_value")
    assert "thousands separator" in f.message


def test_integers_must_be_whole(crm_dir, finding):
    accounts = crm_dir.set_cell(crm_dir.valid["accounts"], 3, "employees", "12.5")
    f = finding(crm_dir.run(accounts=accounts).report, "not_integer")
    assert (f.table, f.column, f.rows) == ("accounts", "employees", (3,))


def test_attribute_with_text_is_categorical(crm_dir):
    deals = crm_dir.set_cell(crm_dir.valid["deals"], 3, "lead_score", "high")
    data = crm_dir.run(deals=deals).data
    assert isinstance(data.deals["lead_score"].dtype, pd.CategoricalDtype)


# --------------------------------------------------------------------------- labels


def test_crm_outcome_labels_map_to_won_and_lost(crm_dir):
    funnel = Funnel(
        stages=("lead", "qualified", "proposal"), won_label="Closed Won", lost_label="Closed Lost"
    )
    deals = crm_dir.set_cell(crm_dir.valid["deals"], 2, "outcome", "Closed Won")
    deals = crm_dir.set_cell(deals, 3, "outcome", "closed lost")  # case-insensitive
    history = crm_dir.set_cell(crm_dir.valid["stage_history"], 4, "stage", "Closed Won")
    history = crm_dir.set_cell(history, 6, "stage", "Closed Lost")
    result = crm_dir.run(funnel=funnel, deals=deals, stage_history=history)
    assert result.report.ok, result.report.to_text()
    assert result.data.deals["outcome"].tolist()[:2] == ["won", "lost"]
    assert result.data.stage_history["stage"].tolist()[2] == "won"
    assert result.data.stage_history["stage"].tolist()[4] == "lost"


def test_exclude_attributes_drops_the_column(crm_dir):
    funnel = Funnel(
        stages=("lead", "qualified", "proposal"),
        won_label="won",
        lost_label="lost",
        exclude_attributes=("lead_score",),
    )
    result = crm_dir.run(funnel=funnel)
    assert result.report.ok
    assert "lead_score" not in result.data.deals
    assert "source" in result.data.deals  # contract columns are never excluded


# --------------------------------------------------------------------------- files


def test_utf8_with_bom_is_read(crm_dir):
    deals = crm_dir.set_cell(crm_dir.valid["deals"], 2, "owner_id", "Zoë")
    result = crm_dir.run(deals="\ufeff".encode() + deals.encode("utf-8"))
    assert result.report.ok, result.report.to_text()
    assert list(result.data.deals.columns)[0] == "deal_id"
    assert result.data.deals["owner_id"].iloc[0] == "Zoë"


def test_windows_line_endings_are_read(crm_dir):
    result = crm_dir.run(deals=crm_dir.valid["deals"].replace("\n", "\r\n").encode())
    assert result.report.ok, result.report.to_text()
    assert result.data.deals["lead_score"].tolist() == [80.0, 35.0, 60.0]


def test_parquet_tables_are_read_and_typed(crm_dir):
    frame = pd.read_csv(io.StringIO(crm_dir.valid["deals"]), keep_default_na=False, dtype=str)
    frame["created_at"] = pd.to_datetime(frame["created_at"], format="ISO8601")
    frame["amount"] = frame["amount"].astype(float)
    frame["deal_id"] = [1, 2, 3]  # numeric ids become text
    frame.loc[2, ["closed_at", "outcome"]] = None
    crm_dir.write(deals=None, stage_history=None, touchpoints=None)
    frame.to_parquet(crm_dir.root / "deals.parquet")
    result = crm_dir.load()
    assert result.report.ok, result.report.to_text()
    deals = result.data.deals
    assert result.sources["deals"].name == "deals.parquet"
    assert deals["deal_id"].tolist() == ["1", "2", "3"]
    assert deals["created_at"].iloc[0] == ts("2024-01-05 10:00")
    assert str(deals["created_at"].dtype) == TIMESTAMP_DTYPE


def test_parquet_rows_are_numbered_from_one(crm_dir, finding):
    frame = pd.DataFrame(
        {
            "deal_id": ["D1", "D2", "D3"],
            "created_at": ["2024-01-01"] * 3,
            "amount": [1.0, -2.0, 3.0],
        }
    )
    crm_dir.write(deals=None, stage_history=None, touchpoints=None)
    frame.to_parquet(crm_dir.root / "deals.parquet")
    f = finding(crm_dir.load().report, "negative_value")
    assert (f.rows, f.file) == ((2,), "deals.parquet")
    assert "row 2" in f.location()


def test_unreadable_parquet(crm_dir, finding):
    result = crm_dir.run(**{"deals": None, "deals.parquet": b"PAR1 this is not parquet"})
    f = finding(result.report, "unreadable_file")
    assert (f.table, f.file) == ("deals", "deals.parquet")
    assert result.data is None


def test_missing_folder_is_a_finding(tmp_path, finding):
    from crm.load import load_crm

    result = load_crm(tmp_path / "nope", funnel=Funnel(("lead",), "won", "lost"), as_of=None)
    assert finding(result.report, "missing_folder").severity == "error"
    assert result.data is None


def test_missing_deals_is_an_error(crm_dir, finding):
    result = crm_dir.run(deals=None, **{"Deals.xlsx": b"x"})
    f = finding(result.report, "missing_table")
    assert f.table == "deals" and "Deals.xlsx" in f.hint
    assert result.data is None


def test_csv_and_parquet_of_one_table_is_ambiguous(crm_dir, finding):
    result = crm_dir.run(**{"touchpoints.parquet": b"whatever"})
    f = finding(result.report, "ambiguous_table")
    assert f.table == "touchpoints"
    assert "touchpoints.csv" in f.message and "touchpoints.parquet" in f.message


def test_unexpected_files_are_mentioned(crm_dir, finding):
    f = finding(crm_dir.run(**{"opportunities.csv": "x"}).report, "unexpected_file")
    assert f.severity == "warning" and "opportunities.csv" in f.message


@pytest.mark.parametrize("content", ["", "\n\n", "\ufeff"])
def test_empty_file(crm_dir, finding, content):
    f = finding(crm_dir.run(touchpoints=content).report, "empty_file")
    assert (f.severity, f.table) == ("error", "touchpoints")


def test_header_only_file(crm_dir, finding):
    header = crm_dir.valid["deals"].splitlines()[0]
    f = finding(crm_dir.run(deals=header + "\n").report, "empty_file")
    assert f.table == "deals" and "no data rows" in f.message


def test_latin1_bytes_are_not_utf8(crm_dir, finding):
    deals = crm_dir.set_cell(crm_dir.valid["deals"], 3, "owner_id", "Zoë")
    f = finding(crm_dir.run(deals=deals.encode("cp1252")).report, "not_utf8")
    assert (f.table, f.rows, f.file) == ("deals", (3,), "deals.csv")
    assert "line 3" in f.message and "Windows-1252" in f.message
    assert "UTF-8" in f.hint


@pytest.mark.parametrize(("sep", "name"), [(";", "semicolon"), ("\t", "tab")])
def test_wrong_separator(crm_dir, finding, sep, name):
    f = finding(
        crm_dir.run(deals=crm_dir.valid["deals"].replace(",", sep)).report, "wrong_separator"
    )
    assert (f.table, f.rows) == ("deals", (1,))
    assert name in f.message and "deal_id" in f.message
    assert "comma" in f.hint


def test_ragged_rows_are_malformed(crm_dir, finding):
    history = crm_dir.set_line(crm_dir.valid["stage_history"], 3, "D1,qualified")
    history = crm_dir.set_line(history, 6, "D2,lost,2024-03-15T12:00:00Z,extra")
    f = finding(crm_dir.run(stage_history=history).report, "malformed_csv")
    assert (f.table, f.rows, f.count) == ("stage_history", (3, 6), 2)


def test_unclosed_quote_is_malformed(crm_dir, finding):
    history = crm_dir.set_line(crm_dir.valid["stage_history"], 4, 'D1,"won,2024-02-20T16:00:00Z')
    f = finding(crm_dir.run(stage_history=history).report, "malformed_csv")
    assert f.rows == (4,) and "never closed" in f.message


def test_duplicate_column_names(crm_dir, finding):
    deals = crm_dir.valid["deals"].replace("lead_score", " amount ", 1)
    f = finding(crm_dir.run(deals=deals).report, "duplicate_column")
    assert f.table == "deals" and "amount" in f.message


def test_quoted_line_breaks_keep_line_numbers_right(crm_dir, finding):
    deals = crm_dir.valid["deals"].replace("lead_score", "notes")
    deals = crm_dir.set_cell(deals, 2, "notes", '"first line\nsecond line"')
    deals = crm_dir.set_cell(deals, 5, "amount", "-1")  # D3: the 3rd record, on line 5
    f = finding(crm_dir.run(deals=deals).report, "negative_value")
    assert f.rows == (5,)
    assert crm_dir.load().data is None


def test_blank_lines_are_dropped_with_a_warning(crm_dir, finding):
    deals = crm_dir.set_line(
        crm_dir.valid["deals"], 3, "\n" + crm_dir.valid["deals"].splitlines()[2]
    )
    deals = crm_dir.set_cell(deals, 5, "amount", "-1")
    result = crm_dir.run(deals=deals)
    assert finding(result.report, "blank_rows").rows == (3,)
    assert finding(result.report, "negative_value").rows == (5,)


def test_whitespace_around_names_and_values_is_stripped(crm_dir):
    deals = crm_dir.valid["deals"].replace("deal_id,", " deal_id ,").replace("D1,", " D1 ,")
    data = crm_dir.run(deals=deals).data
    assert data is not None and data.deals["deal_id"].iloc[0] == "D1"


def test_row_numbers_follow_the_file(crm_dir):
    history = crm_dir.set_cell(crm_dir.valid["stage_history"], 8, "entered_at", "x")
    history = crm_dir.set_cell(history, 2, "entered_at", "y")
    f = [
        f
        for f in crm_dir.run(stage_history=history).report.findings
        if f.rule == "unparseable_value"
    ][0]
    assert f.rows == (2, 8) and f.count == 2
    assert np.array_equal(f.rows, sorted(f.rows))


def test_quoted_line_breaks_are_kept_in_the_value(crm_dir):
    deals = crm_dir.valid["deals"].replace("lead_score", "notes")
    deals = crm_dir.set_cell(deals, 2, "notes", '"first line\nsecond, with a comma"')
    result = crm_dir.run(deals=deals)
    assert result.report.ok, result.report.to_text()
    assert result.data.deals["notes"].iloc[0] == "first line\nsecond, with a comma"


def test_utf16_file_is_not_utf8(crm_dir, finding):
    f = finding(crm_dir.run(deals=crm_dir.valid["deals"].encode("utf-16")).report, "not_utf8")
    assert f.table == "deals" and "UTF-16" in f.message


def test_trailing_commas_make_an_ignored_empty_column(crm_dir, finding):
    accounts = "\n".join(line + "," for line in crm_dir.valid["accounts"].splitlines()) + "\n"
    result = crm_dir.run(accounts=accounts)
    assert finding(result.report, "unnamed_column").severity == "warning"
    assert result.report.ok
    assert list(result.data.accounts.columns)[-1] == "created_at"


def test_unnamed_column_with_data_is_an_error(crm_dir, finding):
    accounts = crm_dir.valid["accounts"].replace("created_at", "")
    f = finding(crm_dir.run(accounts=accounts).report, "unnamed_column")
    assert (f.severity, f.table, f.rows) == ("error", "accounts", (1,))


def test_mixed_day_and_month_first_dates(crm_dir, finding):
    deals = crm_dir.set_cell(crm_dir.valid["deals"], 2, "expected_close_date", "25/04/2024")
    deals = crm_dir.set_cell(deals, 3, "expected_close_date", "04/25/2024")
    f = finding(crm_dir.run(deals=deals).report, "ambiguous_date_format")
    assert f.rows == (2, 3) and "mix day-first and month-first" in f.message


def test_file_cut_off_mid_row_is_an_error(crm_dir, finding):
    # an interrupted copy: the last timestamp lost its end and the final line break
    history = crm_dir.valid["stage_history"].rstrip("\n")[:-13]
    assert history.endswith("D3,proposal,2024-02")
    f = finding(crm_dir.run(stage_history=history).report, "truncated_file")
    assert (f.table, f.rows, f.severity) == ("stage_history", (8,), "error")
    assert "'2024-02'" in f.message and "entered_at" in f.message and "cut off" in f.message


def test_short_last_value_of_a_variable_width_column_is_a_warning(crm_dir, finding):
    lines = ["deal_id,stage,entered_at,note"]
    lines += [f"D1,lead,2024-01-05T10:00:00Z,note number {i}" for i in range(25)]
    history = "\n".join([*lines, "D1,qualified,2024-01-12T10:00:00Z,no"])
    f = finding(crm_dir.run(stage_history=history).report, "truncated_file")
    assert (f.rows, f.severity) == ((27,), "warning")


@pytest.mark.parametrize("end", ["\n", ""])
def test_complete_files_with_or_without_a_final_line_end_are_fine(crm_dir, end):
    history = crm_dir.valid["stage_history"].rstrip("\n") + end
    assert "truncated_file" not in crm_dir.run(stage_history=history).report.rules()
