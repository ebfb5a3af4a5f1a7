"""Every validation rule: a tiny literal fixture that triggers it, and where it points.

Line numbers refer to ``VALID`` in conftest.py: deals D1 (won) line 2, D2 (lost) line 3,
D3 (open) line 4.
"""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from crm.data import CRMData
from crm.report import ValidationReport
from crm.schemas import Funnel
from crm.validate import validate_crm


def where(f):
    return f.severity, f.table, f.column, f.rows


# --------------------------------------------------------------------------- errors


def test_missing_required_column(crm_dir, finding):
    history = "\n".join(
        line.rsplit(",", 1)[0] for line in crm_dir.valid["stage_history"].split("\n")
    )
    f = finding(crm_dir.run(stage_history=history).report, "missing_column")
    assert where(f) == ("error", "stage_history", "entered_at", ())


def test_missing_column_suggests_a_near_miss(crm_dir, finding):
    deals = crm_dir.valid["deals"].replace("deal_id", "Deal_ID", 1)
    f = finding(crm_dir.run(deals=deals).report, "missing_column")
    assert f.column == "deal_id"
    assert "'Deal_ID'" in f.hint and "did you mean 'deal_id'" in f.hint


def test_optional_near_miss_is_a_warning(crm_dir, finding):
    deals = crm_dir.valid["deals"].replace("amount", "Amount", 1)
    result = crm_dir.run(deals=deals)
    f = finding(result.report, "misnamed_column")
    assert where(f) == ("warning", "deals", "Amount", ())
    assert result.report.ok and "Amount" in result.data.deals  # kept, as an attribute


@pytest.mark.parametrize(
    ("table", "line", "column"),
    [
        ("deals", 3, "created_at"),
        ("deals", 4, "deal_id"),
        ("stage_history", 6, "stage"),
        ("touchpoints", 5, "channel"),
        ("touchpoints", 2, "occurred_at"),
    ],
)
def test_missing_required_value(crm_dir, finding, table, line, column):
    text = crm_dir.set_cell(crm_dir.valid[table], line, column, "  ")
    f = finding(crm_dir.run(**{table: text}).report, "missing_value")
    assert where(f) == ("error", table, column, (line,))


def test_duplicate_deal_id_quotes_the_id_and_all_its_lines(crm_dir, finding):
    deals = crm_dir.set_cell(crm_dir.valid["deals"], 4, "deal_id", "D1")
    f = finding(crm_dir.run(deals=deals).report, "duplicate_id")
    assert where(f) == ("error", "deals", "deal_id", (2, 4))
    assert "'D1' on lines 2, 4" in f.message


def test_duplicate_account_and_touchpoint_ids(crm_dir):
    accounts = crm_dir.add_line(crm_dir.valid["accounts"], "A2,retail,1,,FR,")
    touchpoints = crm_dir.set_cell(crm_dir.valid["touchpoints"], 5, "touchpoint_id", "T2")
    report = crm_dir.run(accounts=accounts, touchpoints=touchpoints).report
    found = {f.table: f for f in report.findings if f.rule == "duplicate_id"}
    assert where(found["accounts"]) == ("error", "accounts", "account_id", (3, 4))
    assert where(found["touchpoints"]) == ("error", "touchpoints", "touchpoint_id", (3, 5))


def test_touchpoint_id_may_be_blank_many_times(crm_dir):
    touchpoints = crm_dir.set_cell(crm_dir.valid["touchpoints"], 2, "touchpoint_id", "")
    touchpoints = crm_dir.set_cell(touchpoints, 3, "touchpoint_id", "")
    assert crm_dir.run(touchpoints=touchpoints).report.ok


def test_closed_without_outcome(crm_dir, finding):
    deals = crm_dir.set_cell(crm_dir.valid["deals"], 3, "outcome", "")
    f = finding(crm_dir.run(deals=deals).report, "closed_without_outcome")
    assert where(f) == ("error", "deals", "outcome", (3,))


def test_outcome_without_closed(crm_dir, finding):
    deals = crm_dir.set_cell(crm_dir.valid["deals"], 4, "outcome", "won")
    f = finding(crm_dir.run(deals=deals).report, "outcome_without_closed")
    assert where(f) == ("error", "deals", "closed_at", (4,))


def test_closed_before_created(crm_dir, finding):
    deals = crm_dir.set_cell(crm_dir.valid["deals"], 2, "closed_at", "2024-01-01")
    f = finding(crm_dir.run(deals=deals).report, "closed_before_created")
    assert where(f) == ("error", "deals", "closed_at", (2,))


@pytest.mark.parametrize(
    ("table", "line", "column"),
    [("deals", 3, "amount"), ("accounts", 2, "employees"), ("accounts", 3, "annual_revenue")],
)
def test_negative_value(crm_dir, finding, table, line, column):
    text = crm_dir.set_cell(crm_dir.valid[table], line, column, "-5")
    f = finding(crm_dir.run(**{table: text}).report, "negative_value")
    assert where(f) == ("error", table, column, (line,))
    assert "-5" in f.message


def test_unknown_outcome_shows_values_and_labels(crm_dir, finding):
    deals = crm_dir.set_cell(crm_dir.valid["deals"], 2, "outcome", "Closed Won")
    f = finding(crm_dir.run(deals=deals).report, "unknown_outcome")
    assert where(f) == ("error", "deals", "outcome", (2,))
    assert "'Closed Won'" in f.message and "won_label 'won'" in f.message
    assert "won_label" in f.hint


def test_unknown_outcome_is_not_also_outcome_without_closed(crm_dir):
    deals = crm_dir.set_cell(crm_dir.valid["deals"], 4, "outcome", "open")
    assert crm_dir.run(deals=deals).report.rules() == {"unknown_outcome"}


def test_unknown_stage_lists_names_and_configured_stages(crm_dir, finding):
    history = crm_dir.set_cell(crm_dir.valid["stage_history"], 3, "stage", "Discovery")
    history = crm_dir.set_cell(history, 8, "stage", "Discovery")
    f = finding(crm_dir.run(stage_history=history).report, "unknown_stage")
    assert where(f) == ("error", "stage_history", "stage", (3, 8))
    assert "'Discovery' (2)" in f.message and "lead, qualified, proposal" in f.message
    assert "funnel.stages" in f.hint


def test_stage_names_match_case_insensitively(crm_dir):
    history = crm_dir.set_cell(crm_dir.valid["stage_history"], 3, "stage", "Qualified")
    data = crm_dir.run(stage_history=history).data
    assert data.stage_history["stage"].iloc[1] == "qualified"


def test_unknown_direction(crm_dir, finding):
    touchpoints = crm_dir.set_cell(crm_dir.valid["touchpoints"], 4, "direction", "sideways")
    f = finding(crm_dir.run(touchpoints=touchpoints).report, "unknown_value")
    assert where(f) == ("error", "touchpoints", "direction", (4,))
    assert "inbound, outbound" in f.message


def test_touchpoint_without_target(crm_dir, finding):
    touchpoints = crm_dir.set_cell(crm_dir.valid["touchpoints"], 4, "account_id", "")
    f = finding(crm_dir.run(touchpoints=touchpoints).report, "touchpoint_without_target")
    assert where(f) == ("error", "touchpoints", "deal_id", (4,))


def test_every_problem_is_reported_in_one_run(crm_dir):
    deals = crm_dir.set_cell(crm_dir.valid["deals"], 3, "amount", "-1")
    history = crm_dir.set_cell(crm_dir.valid["stage_history"], 2, "stage", "Discovery")
    touchpoints = crm_dir.set_cell(crm_dir.valid["touchpoints"], 3, "occurred_at", "yesterday")
    accounts = crm_dir.valid["accounts"].replace(",", ";")
    result = crm_dir.run(
        deals=deals, stage_history=history, touchpoints=touchpoints, accounts=accounts
    )
    assert {"negative_value", "unknown_stage", "unparseable_value", "wrong_separator"} <= (
        result.report.rules()
    )
    assert result.data is None
    assert not result.report.ok


# --------------------------------------------------------------------------- warnings


def test_stage_row_after_close(crm_dir, finding):
    history = crm_dir.add_line(crm_dir.valid["stage_history"], "D2,proposal,2024-04-01T00:00:00Z")
    report = crm_dir.run(stage_history=history).report
    f = [f for f in report.findings if f.rule == "event_after_close"][0]
    assert where(f) == ("warning", "stage_history", "entered_at", (9,))
    assert report.ok


def test_touchpoint_after_close(crm_dir, finding):
    touchpoints = crm_dir.set_cell(crm_dir.valid["touchpoints"], 3, "occurred_at", "2024-06-01")
    f = finding(crm_dir.run(touchpoints=touchpoints).report, "event_after_close")
    assert where(f) == ("warning", "touchpoints", "occurred_at", (3,))
    assert "'D1'" in f.message


def test_stage_before_created(crm_dir, finding):
    history = crm_dir.set_cell(crm_dir.valid["stage_history"], 5, "entered_at", "2024-01-01")
    f = finding(crm_dir.run(stage_history=history).report, "stage_before_created")
    assert where(f) == ("warning", "stage_history", "entered_at", (5,))


def test_no_stage_history(crm_dir, finding):
    history = crm_dir.set_line(crm_dir.set_line(crm_dir.valid["stage_history"], 8, None), 7, None)
    f = finding(crm_dir.run(stage_history=history).report, "no_stage_history")
    assert where(f) == ("warning", "deals", "deal_id", (4,))


def test_no_stage_history_needs_the_table(crm_dir):
    assert "no_stage_history" not in crm_dir.run(stage_history=None).report.rules()


@pytest.mark.parametrize(
    ("table", "line", "column", "value"),
    [
        ("deals", 3, "account_id", "A9"),
        ("stage_history", 7, "deal_id", "D9"),
        ("touchpoints", 5, "deal_id", "D9"),
        ("touchpoints", 4, "account_id", "A9"),
    ],
)
def test_unknown_reference(crm_dir, finding, table, line, column, value):
    text = crm_dir.set_cell(crm_dir.valid[table], line, column, value)
    f = finding(crm_dir.run(**{table: text}).report, "unknown_reference")
    assert where(f) == ("warning", table, column, (line,))
    assert repr(value) in f.message


def test_unknown_reference_needs_the_referenced_table(crm_dir):
    deals = crm_dir.set_cell(crm_dir.valid["deals"], 3, "account_id", "A9")
    assert "unknown_reference" not in crm_dir.run(deals=deals, accounts=None).report.rules()


def test_future_timestamp(crm_dir, finding):
    touchpoints = crm_dir.set_cell(crm_dir.valid["touchpoints"], 5, "occurred_at", "2030-01-01")
    f = finding(crm_dir.run(touchpoints=touchpoints).report, "future_timestamp")
    assert where(f) == ("warning", "touchpoints", "occurred_at", (5,))


def test_no_future_check_without_as_of(crm_dir):
    touchpoints = crm_dir.set_cell(crm_dir.valid["touchpoints"], 5, "occurred_at", "2030-01-01")
    crm_dir.write(touchpoints=touchpoints)
    assert "future_timestamp" not in crm_dir.load(as_of=None).report.rules()


def test_unknown_channel_lists_values(crm_dir, finding):
    touchpoints = crm_dir.set_cell(crm_dir.valid["touchpoints"], 2, "channel", "Email")
    touchpoints = crm_dir.set_cell(touchpoints, 4, "channel", "carrier_pigeon")
    result = crm_dir.run(touchpoints=touchpoints)
    f = finding(result.report, "unknown_channel")
    assert where(f) == ("warning", "touchpoints", "channel", (2, 4))
    assert "'Email'" in f.message and "'carrier_pigeon'" in f.message
    assert result.report.ok


def test_won_deal_whose_last_stage_is_not_won(crm_dir, finding):
    history = crm_dir.set_line(crm_dir.valid["stage_history"], 4, None)
    f = finding(crm_dir.run(stage_history=history).report, "outcome_stage_mismatch")
    assert where(f) == ("warning", "deals", "outcome", (2,))
    assert "'D1' is won but last entered 'qualified'" in f.message


def test_open_deal_whose_last_stage_is_terminal(crm_dir, finding):
    history = crm_dir.add_line(crm_dir.valid["stage_history"], "D3,lost,2024-03-01T00:00:00Z")
    f = finding(crm_dir.run(stage_history=history).report, "outcome_stage_mismatch")
    assert f.rows == (4,)


def test_duplicate_rows(crm_dir, finding):
    history = crm_dir.add_line(crm_dir.valid["stage_history"], "D1,qualified,2024-01-12T10:00:00Z")
    f = finding(crm_dir.run(stage_history=history).report, "duplicate_row")
    assert where(f) == ("warning", "stage_history", None, (3, 9))


def test_simultaneous_stages(crm_dir, finding):
    history = crm_dir.set_cell(
        crm_dir.valid["stage_history"], 8, "entered_at", "2024-02-01T14:00:00Z"
    )
    f = finding(crm_dir.run(stage_history=history).report, "simultaneous_stages")
    assert where(f) == ("warning", "stage_history", "entered_at", (7, 8))


def test_touchpoint_account_differs_from_the_deal(crm_dir, finding):
    touchpoints = crm_dir.set_cell(crm_dir.valid["touchpoints"], 5, "account_id", "A2")
    f = finding(crm_dir.run(touchpoints=touchpoints).report, "account_mismatch")
    assert where(f) == ("warning", "touchpoints", "account_id", (5,))


def test_warnings_leave_the_data_usable(crm_dir):
    touchpoints = crm_dir.set_cell(crm_dir.valid["touchpoints"], 5, "channel", "fax")
    result = crm_dir.run(touchpoints=touchpoints)
    assert result.report.ok and result.data is not None
    assert len(result.data.touchpoints) == 4


# --------------------------------------------------------------------------- in memory


def test_loaded_data_validates_cleanly_in_memory(crm_dir):
    data = crm_dir.run().data
    report = validate_crm(data, funnel=crm_dir.funnel, as_of=crm_dir.as_of)
    assert report.findings == []


def test_in_memory_rows_are_one_based_positions(crm_dir):
    data = crm_dir.run().data
    deals = data.deals.copy()
    deals.loc[1, "amount"] = -3.0
    report = validate_crm(dataclasses.replace(data, deals=deals), funnel=crm_dir.funnel)
    f = [f for f in report.findings if f.rule == "negative_value"][0]
    assert (f.table, f.rows, f.file) == ("deals", (2,), None)
    assert "row 2" in f.location()


def test_in_memory_wrong_dtype(crm_dir, finding):
    data = crm_dir.run().data
    deals = data.deals.assign(created_at=data.deals["created_at"].astype(str))
    report = ValidationReport()
    validate_crm(CRMData(deals=deals), funnel=crm_dir.funnel, report=report)
    f = finding(report, "wrong_dtype")
    assert (f.table, f.column) == ("deals", "created_at")


def test_in_memory_rules_need_no_files():
    deals = pd.DataFrame(
        {
            "deal_id": pd.Series(["D1", "D1"], dtype="str"),
            "created_at": pd.Series(pd.to_datetime(["2024-01-01", "2024-01-02"], utc=True)).astype(
                "datetime64[us, UTC]"
            ),
        }
    )
    report = validate_crm(CRMData(deals=deals), funnel=Funnel(("lead",), "won", "lost"))
    assert report.rules() == {"duplicate_id"}
    assert report.findings[0].rows == (1, 2)


def test_stage_history_without_any_valid_timestamp_is_reported_not_crashed(crm_dir):
    """Regression: every entered_at unparseable left no 'last stage' per deal."""
    lines = crm_dir.valid["stage_history"].splitlines()
    header, rows = lines[0], lines[1:]
    col = header.split(",").index("entered_at")
    broken = [
        ",".join("garbage" if i == col else c for i, c in enumerate(r.split(","))) for r in rows
    ]
    result = crm_dir.run(stage_history="\n".join([header, *broken]) + "\n")
    rules = result.report.rules()
    assert "internal_error" not in rules, result.report.to_text()
    assert "unparseable_value" in rules
