"""The Salesforce importer on a hand-written export folder (fixtures/salesforce/).

The folder holds the ugly parts on purpose: a deleted opportunity, a merged account, an
amount-only history row, a stage renamed mid-history ("Discovery" -> "Qualification"), a
deal that went backwards, a custom closing stage, a report export (Task.csv) with US
dates, 15-character ids and the report footer.
"""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
from importer_helpers import (
    DEFAULT_FUNNEL,
    DERIVED,
    FIXTURES,
    NOWHERE,
    assert_every_row_accounted,
    left_out,
    rows,
    utc,
    write_and_validate,
)

from crm.importers.common import ImportInputError
from crm.importers.salesforce import id18, import_salesforce
from crm.importers.vendor import load_vendor_map

FOLDER = FIXTURES / "salesforce"


def opp(n: int) -> str:
    return f"00600000000000{n}AAA"


def acc(n: int) -> str:
    return f"00100000000000{n}AAA"


@pytest.fixture(scope="module")
def result():
    options = load_vendor_map(FOLDER / "map.yaml")
    return import_salesforce(FOLDER, funnel=DEFAULT_FUNNEL, options=options)


def test_deals_outcomes_and_close_times(result):
    deals = result.data.deals
    assert rows(deals, "deal_id", "outcome", "closed_at") == [
        (opp(1), "won", utc("2024-03-01T16:30")),  # when the history recorded Closed Won
        (opp(2), "lost", utc("2024-03-10T08:00")),
        (opp(3), None, None),
        (opp(5), "won", utc("2024-02-10T16:00")),  # custom stage 'Closed - Signed', IsWon
        (opp(6), None, None),
        (opp(7), "lost", utc("2024-03-05T18:00")),  # CloseDate 03-05 < created 18:00: same day
    ]
    assert opp(4) not in set(deals["deal_id"])  # IsDeleted = true


def test_deal_columns(result):
    deals = result.data.deals.set_index("deal_id")
    assert pd.isna(deals.loc[opp(2), "amount"])  # blank amount stays blank
    assert deals.loc[opp(5), "amount"] == 1500.0  # "1,500.00"
    assert deals.loc[opp(6), "account_id"] == acc(1)  # Initech was merged into Acme
    # the rep's first estimate, from the first history row, not the final CloseDate
    assert deals.loc[opp(1), "expected_close_date"] == utc("2024-02-15")
    assert list(deals.columns[-2:]) == ["type", "Region__c"]
    assert "Probability" not in deals.columns and "ForecastCategoryName" not in deals.columns


def test_stage_history(result):
    history = result.data.stage_history
    assert rows(history, "deal_id", "stage", "entered_at") == [
        (opp(1), "lead", utc("2024-01-10T09:00")),
        (opp(1), "qualified", utc("2024-01-20T10:00")),
        (opp(1), "proposal", utc("2024-02-05T10:00")),  # the 02-06 amount edit is not a stage
        (opp(1), "won", utc("2024-03-01T16:30")),
        (opp(2), "lead", utc("2024-01-15T08:00")),
        (opp(2), "qualified", utc("2024-01-25T08:00")),
        (opp(2), "negotiation", utc("2024-02-10T08:00")),
        (opp(2), "qualified", utc("2024-02-20T08:00")),  # went backwards: kept
        (opp(2), "lost", utc("2024-03-10T08:00")),
        (opp(3), "lead", utc("2024-02-01T12:00")),
        (opp(3), "meeting", utc("2024-02-15T12:00")),
        (opp(5), "lead", utc("2024-02-10T15:00")),
        (opp(5), "won", utc("2024-02-10T16:00")),
        (opp(6), "qualified", utc("2024-02-20T09:00")),  # Discovery, renamed Qualification
        (opp(7), "lost", utc("2024-03-05T18:00")),  # derived: no history, closed lost
    ]


def test_touchpoints(result):
    touches = result.data.touchpoints
    got = rows(touches, "touchpoint_id", "deal_id", "account_id", "channel", "direction")
    assert got == [
        ("00T000000000001EAA", opp(1), None, "call", "outbound"),
        ("00T000000000003EAA", opp(2), None, "meeting", None),  # Task subtype, Type Meeting
        ("00T000000000006EAA", None, acc(2), "email", None),  # account-level
        ("00T000000000002EAA", opp(1), None, "email", None),
        ("00U000000000001AAA", opp(2), None, "meeting", None),
        ("00U000000000002AAA", opp(1), None, "demo", None),
        ("00U000000000003AAA", None, acc(1), "meeting", None),  # merged account re-pointed
    ]
    roles = dict(zip(touches["touchpoint_id"], touches["contact_role"], strict=True))
    assert roles["00T000000000001EAA"] == "decision_maker"
    assert roles["00U000000000001AAA"] == "decision_maker"  # Economic Buyer


def test_every_row_is_accounted_for(result):
    s = result.summary
    assert left_out(s, "Opportunity.csv", "deals") == {
        "deleted in Salesforce (IsDeleted = true)": 1
    }
    assert left_out(s, "Account.csv", "accounts") == {
        "merged into another record (MasterRecordId set)": 1
    }
    history = left_out(s, "OpportunityHistory.csv", "stage_history")
    assert sum(history.values()) == 5
    assert history["deleted in Salesforce (IsDeleted = true)"] == 1
    assert history[next(r for r in history if r.startswith("no stage change"))] == 3
    assert left_out(s, "Task.csv", NOWHERE) == {
        "report footer (not a data row)": 4,
        "blank row": 1,
    }
    task = left_out(s, "Task.csv", "touchpoints")
    assert task["open task (not done yet)"] == 1
    assert task["channel mapped to null under channels: (ignored)"] == 1
    assert s.flows[DERIVED]["stage_history"].landed == 1
    assert_every_row_accounted(
        s, sources=["Opportunity.csv", "Account.csv", "OpportunityHistory.csv", "Task.csv"]
    )


def test_output_passes_the_contract_validation(result, tmp_path, funnel):
    loaded = write_and_validate(result.data, tmp_path / "crm", funnel)
    assert loaded.report.ok, loaded.report.to_text()
    assert not loaded.report.findings, loaded.report.to_text()


def test_without_a_date_format_the_us_report_dates_are_refused(funnel):
    with pytest.raises(ImportInputError) as err:
        import_salesforce(FOLDER, funnel=funnel)
    message = str(err.value)
    assert "Task.csv" in message and "'Date'" in message  # the column as the file names it
    assert "'%m/%d/%Y'" in message


def test_unmapped_stage_is_kept_and_named_in_the_summary(funnel):
    options = load_vendor_map(None, date_format="%m/%d/%Y")
    result = import_salesforce(FOLDER, funnel=funnel, options=options)
    assert "Discovery" in set(result.data.stage_history["stage"])
    assert result.summary.unmapped["stage"] == {"Discovery": 1}
    note = next(n for n in result.summary.notes if n.startswith("stage names not mapped"))
    assert "'Discovery'" in note and "stages:" in note


def test_field_history_gives_the_initial_stage(tmp_path, funnel):
    folder = tmp_path / "sf"
    folder.mkdir()
    shutil.copy(FOLDER / "Opportunity.csv", folder)
    (folder / "OpportunityFieldHistory.csv").write_text(
        "OpportunityId,CreatedDate,Field,OldValue,NewValue\n"
        f"{opp(1)},2024-01-20T10:00:00.000Z,StageName,Prospecting,Qualification\n"
        f"{opp(1)},2024-01-21T10:00:00.000Z,Amount,10000,12000\n"
        f"{opp(1)},2024-03-01T16:30:00.000Z,StageName,Qualification,Closed Won\n"
    )
    result = import_salesforce(folder, funnel=funnel)
    one = result.data.stage_history.query(f"deal_id == '{opp(1)}'")
    assert rows(one, "stage", "entered_at") == [
        ("lead", utc("2024-01-10T09:00")),  # OldValue of the first change, at CreatedDate
        ("qualified", utc("2024-01-20T10:00")),
        ("won", utc("2024-03-01T16:30")),
    ]
    assert left_out(result.summary, "OpportunityFieldHistory.csv", "stage_history") == {
        "a change of another field (not StageName)": 1
    }
    # a deal whose stage never changed starts (and stays) in its current stage
    three = result.data.stage_history.query(f"deal_id == '{opp(3)}'")
    assert rows(three, "stage") == [("meeting",)]


def test_missing_opportunity_file_or_column_is_a_clear_error(tmp_path, funnel):
    with pytest.raises(ImportInputError, match="no Opportunity export"):
        import_salesforce(tmp_path, funnel=funnel)
    (tmp_path / "Opportunity.csv").write_text("Id,Amount\n006A,10\n")
    with pytest.raises(ImportInputError, match="Opportunity.csv: no column 'CreatedDate'"):
        import_salesforce(tmp_path, funnel=funnel)


def test_id18():
    ids = pd.Series(["006000000000001", "00T000000000001", "006000000000001AAA", "x", None])
    assert id18(ids).tolist()[:4] == [
        "006000000000001AAA",
        "00T000000000001EAA",  # 'T' is upper case at position 2 of the first chunk
        "006000000000001AAA",
        "x",
    ]


def test_names_are_kept_for_the_exports(result):
    """Opportunity.Name and Account.Name become the contract's names (shown, never a
    feature); a report export's owner name becomes owner_name."""
    deals = result.data.deals.set_index("deal_id")
    assert deals.loc[opp(1), "name"] == "Acme platform"
    accounts = result.data.accounts.set_index("account_id")
    assert accounts.loc[acc(1), "name"] == "Acme"
