"""The HubSpot importer on a hand-written export folder (fixtures/hubspot/).

Ugly parts: German dates in the portal's time zone, a decimal comma, a blank amount, a
deal without a create date, a deal that went backwards (one "Date entered" per stage),
a stage renamed mid-history ("Demo Booked"), a second pipeline, a merged deal and a
merged company referenced by old ids, an engagement on two deals, and tasks.
"""

from __future__ import annotations

import pandas as pd
import pytest
from importer_helpers import (
    DEFAULT_FUNNEL,
    FIXTURES,
    assert_every_row_accounted,
    left_out,
    rows,
    utc,
    write_and_validate,
)

from crm.importers.common import ImportInputError
from crm.importers.hubspot import import_hubspot
from crm.importers.vendor import load_vendor_map

FOLDER = FIXTURES / "hubspot"
DEALS_FILE = "hubspot-crm-exports-all-deals-2024-05-01.csv"


@pytest.fixture(scope="module")
def result():
    return import_hubspot(
        FOLDER, funnel=DEFAULT_FUNNEL, options=load_vendor_map(FOLDER / "map.yaml")
    )


def test_deals(result):
    deals = result.data.deals
    # Berlin is UTC+1 in winter: 01.03.2024 12:00 local is 11:00 UTC
    assert rows(deals, "deal_id", "outcome", "closed_at", "account_id", "amount") == [
        ("101", "won", utc("2024-03-01T11:00"), "9001", 12000.0),
        ("102", "lost", utc("2024-02-20T16:00"), "9002", None),
        ("103", None, None, "9001", 7500.5),  # "7500,50"; first of "9001;9002"
        ("106", "won", utc("2024-03-15T09:00"), "9002", 3000.0),  # 9009 was merged into 9002
    ]
    assert deals.set_index("deal_id").loc["103", "expected_close_date"] == utc("2024-04-29T22:00")
    assert left_out(result.summary, DEALS_FILE, "deals") == {
        "no created_at (blank or unreadable)": 1
    }


def test_stage_history_from_date_entered_columns(result):
    history = result.data.stage_history
    assert rows(history, "deal_id", "stage", "entered_at") == [
        ("101", "lead", utc("2024-01-10T08:00")),
        ("101", "qualified", utc("2024-01-15T09:00")),
        ("101", "meeting", utc("2024-02-01T09:00")),
        ("101", "proposal", utc("2024-02-10T09:00")),
        ("101", "negotiation", utc("2024-02-20T09:00")),
        ("101", "won", utc("2024-03-01T11:00")),
        ("102", "lead", utc("2024-01-12T07:30")),
        ("102", "negotiation", utc("2024-02-01T08:00")),
        ("102", "qualified", utc("2024-02-10T08:00")),  # back to an earlier stage
        ("102", "lost", utc("2024-02-20T16:00")),
        ("103", "lead", utc("2024-02-01T07:00")),
        ("103", "meeting", utc("2024-02-05T10:00")),  # "Demo Booked"; its new name is a repeat
        ("106", "negotiation", utc("2024-03-01T08:00")),  # Renewals pipeline
        ("106", "won", utc("2024-03-15T09:00")),
    ]
    reasons = left_out(result.summary, DEALS_FILE, "stage_history")
    assert sum(reasons.values()) == 2  # 103's renamed stage, and 105 (not imported)


def test_engagements(result):
    touches = result.data.touchpoints
    got = rows(touches, "touchpoint_id", "deal_id", "account_id", "channel", "direction")
    assert got == [
        ("601", "101", "9001", "email", "outbound"),
        ("602", "102", "9002", "email", "inbound"),  # INCOMING_EMAIL
        ("501", "101", "9001", "call", "outbound"),
        ("502", "101", None, "call", "inbound"),  # deal 150 was merged into 101
        ("701", "101", None, "meeting", None),
        ("801", "103", None, "note", None),
        ("503-102", "102", "9002", "call", "outbound"),  # one call, two deals
        ("503-103", "103", "9002", "call", "outbound"),
        ("802", None, "9002", "note", None),  # account-level note
        ("702", "103", None, "meeting", None),
    ]
    s = result.summary
    assert left_out(s, "calls.csv", "touchpoints") == {
        "no occurred_at (blank, unreadable or unmapped)": 1
    }
    assert sum(left_out(s, "emails.csv", "touchpoints").values()) == 1  # deal 999 unknown
    assert sum(left_out(s, "tasks.csv", "touchpoints").values()) == 1  # tasks are to-dos
    assert_every_row_accounted(s, sources=["emails.csv", "tasks.csv", "meetings.csv"])


def test_output_passes_the_contract_validation(result, tmp_path, funnel):
    loaded = write_and_validate(result.data, tmp_path / "crm", funnel)
    assert loaded.report.ok, loaded.report.to_text()
    # warnings only: notes are channel 'note' (not one the contract names), and the call
    # on two deals names the company of one of them on both rows
    assert loaded.report.rules() == {"unknown_channel", "account_mismatch"}


def test_is_closed_won_missing_falls_back_to_the_deal_stage(tmp_path, funnel):
    (tmp_path / "deals.csv").write_text(
        "Deal ID,Deal Stage,Create Date,Close Date\n"
        "1,Closed Won,2024-01-01 10:00,2024-02-01 10:00\n"
        "2,closedlost,2024-01-02 10:00,2024-02-02 10:00\n"
        "3,Qualified To Buy,2024-01-03 10:00,2024-04-01 00:00\n"
    )
    result = import_hubspot(tmp_path, funnel=funnel)
    assert rows(result.data.deals, "deal_id", "outcome", "closed_at") == [
        ("1", "won", utc("2024-02-01T10:00")),
        ("2", "lost", utc("2024-02-02T10:00")),
        ("3", None, None),
    ]
    assert result.data.stage_history is None
    assert any("Date entered" in n for n in result.summary.notes)


def test_no_deals_export_is_a_clear_error(tmp_path, funnel):
    (tmp_path / "contacts.csv").write_text("Record ID,First Name\n1,Ann\n")
    with pytest.raises(ImportInputError, match="no deals export"):
        import_hubspot(tmp_path, funnel=funnel)


def test_unmapped_pipeline_stage_is_reported(tmp_path, funnel):
    (tmp_path / "deals.csv").write_text(
        'Record ID,Deal Stage,Create Date,"Date entered ""Onboarding (Customer Success)"""\n'
        "1,Onboarding,2024-01-01 10:00,2024-01-01 10:00\n"
    )
    result = import_hubspot(tmp_path, funnel=funnel)
    assert result.summary.unmapped["stage"] == {"Onboarding": 1}
    assert pd.Series(result.data.stage_history["stage"]).tolist() == ["Onboarding"]


def test_names_are_kept_for_the_exports(result):
    """Deal Name, Company name and the UI export's Deal owner become the contract's names."""
    deals = result.data.deals.set_index("deal_id")
    assert deals.loc["101", "name"] == "Acme platform"
    assert deals.loc["101", "owner_name"] == "Jane Doe"
    assert result.data.accounts.set_index("account_id").loc["9001", "name"] == "Acme GmbH"
