"""``import mapped`` on a German CRM export (fixtures/mapped/) and a won-list export
(fixtures/wonlist/), plus the mapping file's error messages."""

from __future__ import annotations

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
from crm.importers.mapped import import_mapped
from crm.importers.mapping import load_mapping, parse_mapping
from crm.importers.vendor import load_vendor_map


@pytest.fixture(scope="module")
def german():
    return import_mapped(FIXTURES / "mapped" / "mapping.yaml", funnel=DEFAULT_FUNNEL)


def test_deals_with_joins_currencies_and_outcome_values(german):
    deals = german.data.deals
    assert rows(deals, "deal_id", "amount", "outcome", "closed_at", "team") == [
        ("D1", 1333.26, "won", utc("2024-02-15T10:00"), "Nord"),  # 1.234,50 EUR x 1.08
        ("D2", 12960.0, "lost", utc("2024-03-01T11:00"), "Süd"),  # "€ 12.000", blank = EUR
        ("D3", 2000.0, None, None, "Nord"),  # USD; its planned close date dropped (open)
        ("D4", None, None, None, None),  # blank amount; owner 'ulf' is not in owners.csv
        ("D6", None, None, None, "Süd"),  # CHF has no rate; 'Pausiert' is not mapped: open
    ]
    # 31.12.2023 17:30 in Berlin is 16:30 UTC
    assert deals.set_index("deal_id").loc["D1", "created_at"] == utc("2023-12-31T16:30")
    assert left_out(german.summary, "deals.csv", "deals") == {"excluded: Gelöscht in [ja]": 1}
    assert german.summary.flows["deals.csv"]["deals"].combined == 1  # D1 exported twice
    notes = "\n".join(german.summary.notes)
    assert "CHF" in notes and "'Pausiert'" in notes and "expected_close_date" in notes


def test_stage_history_rows(german):
    assert rows(german.data.stage_history, "deal_id", "stage", "entered_at") == [
        ("D1", "lead", utc("2023-12-31T16:30")),
        ("D1", "qualified", utc("2024-01-05T09:00")),
        ("D1", "proposal", utc("2024-01-20T09:00")),
        ("D1", "won", utc("2024-02-15T10:00")),
        ("D2", "lead", utc("2024-01-05T08:00")),
        ("D2", "proposal", utc("2024-01-15T08:00")),
        ("D2", "qualified", utc("2024-01-25T08:00")),  # backwards
        ("D2", "lost", utc("2024-03-01T11:00")),
        ("D3", "lead", utc("2024-01-10T08:00")),
        ("D3", "proposal", utc("2024-02-01T08:00")),  # "Angebot versendet" is the same stage
        ("D4", "lead", utc("2024-01-12T10:15")),
    ]
    reasons = left_out(german.summary, "stage_log.csv", "stage_history")
    assert (
        reasons.pop("entered_at: unreadable date in column 'Geändert am' (e.g. '31.02.2024 09:00')")
        == 1
    )
    assert reasons.pop("stage mapped to null under stages: (ignored)") == 1
    assert sum(reasons.values()) == 2  # D5 not imported; D3's renamed stage


def test_touchpoints_and_accounts(german):
    assert rows(german.data.touchpoints, "deal_id", "channel", "direction") == [
        ("D1", "call", "outbound"),
        ("D1", "email", "inbound"),
        ("D2", "meeting", None),
        ("D4", "webinar", None),
    ]
    assert rows(german.data.accounts, "account_id", "employees", "country") == [
        ("F1", 1200.0, "Deutschland"),  # "1.200" with decimal comma
        ("F2", 80.0, "Österreich"),
    ]
    assert_every_row_accounted(
        german.summary, sources=["deals.csv", "stage_log.csv", "activities.csv", "owners.csv"]
    )


def test_german_output_is_valid(german, tmp_path, funnel):
    loaded = write_and_validate(german.data, tmp_path / "crm", funnel)
    assert loaded.report.ok, loaded.report.to_text()


def test_won_list_with_a_horizon(funnel):
    result = import_mapped(FIXTURES / "wonlist" / "mapping.yaml", funnel=funnel)
    assert rows(result.data.deals, "deal_id", "outcome", "closed_at", "source") == [
        ("L1", "won", utc("2018-02-01T14:30"), "organic_search"),
        ("L2", "lost", utc("2018-04-15"), "paid_search"),  # not won within 90 days
        ("L4", "won", utc("2018-06-20T09:00"), "organic_search"),  # won late: still won
        ("L3", None, None, "social"),  # 90 days not over at the export date: censored
    ]
    s = result.summary
    assert left_out(s, "leads.csv", "deals") == {
        "excluded: origin in [test]": 1,
        "no created_at (blank or unreadable)": 1,
    }
    assert s.flows["closed_deals.csv"]["joined into deals"].landed == 2
    assert left_out(s, "closed_deals.csv", "joined into deals") == {"matches no row of deals": 1}


def test_won_list_censored(tmp_path, funnel):
    folder = FIXTURES / "wonlist"
    raw = {
        "deals": {
            "input": str(folder / "leads.csv"),
            "columns": {"deal_id": "mql_id", "created_at": "first_contact_date"},
            "outcome": {"won_list": {"input": str(folder / "closed_deals.csv"), "key": "mql_id"}},
        }
    }
    result = import_mapped(parse_mapping(raw), funnel=funnel, base=tmp_path)
    outcomes = dict(rows(result.data.deals, "deal_id", "outcome"))
    assert outcomes == {"L1": "won", "L2": None, "L4": "won", "L3": None, "L5": None}


def _import(tmp_path, raw: dict, files: dict[str, str], funnel):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return import_mapped(parse_mapping(raw), funnel=funnel, base=tmp_path)


DEALS = "id,created,stage\n1,2024-01-01,Won\n2,2024-01-02,Open\n"


def test_typos_fail_with_the_key_named():
    with pytest.raises(
        ImportInputError, match=r"deals\.colums: unknown key; did you mean 'columns'"
    ):
        parse_mapping({"deals": {"input": "x.csv", "colums": {}}})
    with pytest.raises(ImportInputError, match=r"deals\.columns\.amout"):
        parse_mapping(
            {"deals": {"input": "x", "columns": {"deal_id": "a", "created_at": "b", "amout": "c"}}}
        )
    with pytest.raises(ImportInputError, match="columns must map created_at"):
        parse_mapping({"deals": {"input": "x", "columns": {"deal_id": "a"}}})


def test_missing_column_names_file_and_suggests(tmp_path, funnel):
    raw = {"deals": {"input": "d.csv", "columns": {"deal_id": "id", "created_at": "Created"}}}
    with pytest.raises(ImportInputError) as err:
        _import(tmp_path, raw, {"d.csv": DEALS}, funnel)
    assert "d.csv: no column 'Created'" in str(err.value)
    assert "did you mean 'created'?" in str(err.value)


def test_missing_input_file(tmp_path, funnel):
    raw = {"deals": {"input": "nope.csv", "columns": {"deal_id": "id", "created_at": "c"}}}
    with pytest.raises(ImportInputError, match="'nope.csv' is neither a name under inputs"):
        _import(tmp_path, raw, {}, funnel)


def test_ambiguous_dates_ask_for_a_date_format(tmp_path, funnel):
    raw = {"deals": {"input": "d.csv", "columns": {"deal_id": "id", "created_at": "created"}}}
    files = {"d.csv": "id,created\n1,03/04/2024\n2,05/06/2024\n"}
    with pytest.raises(ImportInputError) as err:
        _import(tmp_path, raw, files, funnel)
    message = str(err.value)
    assert "d.csv, column 'created'" in message
    assert "'%d/%m/%Y' (day first) or '%m/%d/%Y' (month first)" in message


def test_outcome_from_the_current_stage_and_unmapped_stage(tmp_path, funnel):
    raw = {
        "stages": {"Won": "won", "Open": "qualified"},
        "deals": {
            "input": "d.csv",
            "columns": {"deal_id": "id", "created_at": "created", "closed_at": "created"},
            "stage": "stage",
        },
    }
    result = _import(tmp_path, raw, {"d.csv": DEALS}, funnel)
    assert rows(result.data.deals, "deal_id", "outcome") == [("1", "won"), ("2", None)]


def test_stage_map_target_must_be_a_funnel_stage(tmp_path, funnel):
    raw = {
        "stages": {"Won": "wonn"},
        "deals": {
            "input": "d.csv",
            "columns": {"deal_id": "id", "created_at": "created"},
            "stage": "stage",
        },
    }
    with pytest.raises(ImportInputError, match="'Won' maps to 'wonn', which is not one of"):
        _import(tmp_path, raw, {"d.csv": DEALS}, funnel)


def test_where_keeps_only_listed_values_and_constants(tmp_path, funnel):
    raw = {
        "deals": {
            "input": "d.csv",
            "where": {"stage": ["won", "OPEN"]},  # case-insensitive
            "columns": {"deal_id": "id", "created_at": "created", "source": {"value": "web"}},
        }
    }
    files = {"d.csv": DEALS + "3,2024-01-03,Deleted\n"}
    result = _import(tmp_path, raw, files, funnel)
    assert rows(result.data.deals, "deal_id", "source") == [("1", "web"), ("2", "web")]
    assert left_out(result.summary, "d.csv", "deals") == {
        "filtered out by where: stage not in [won, OPEN]": 1
    }


def test_stage_dates_columns(tmp_path, funnel):
    raw = {
        "deals": {"input": "d.csv", "columns": {"deal_id": "id", "created_at": "created"}},
        "stage_history": {
            "input": "d.csv",
            "format": "stage_dates",
            "columns": {"deal_id": "id"},
            "stage_dates": {"created": "lead", "engaged": "meeting", "closed": "won"},
        },
    }
    files = {
        "d.csv": "id,created,engaged,closed\n1,2024-01-01,2024-01-05,2024-02-01\n2,2024-01-02,,\n"
    }
    result = _import(tmp_path, raw, files, funnel)
    assert rows(result.data.stage_history, "deal_id", "stage", "entered_at") == [
        ("1", "lead", utc("2024-01-01")),
        ("1", "meeting", utc("2024-01-05")),
        ("1", "won", utc("2024-02-01")),
        ("2", "lead", utc("2024-01-02")),
    ]
    # the outcome and closed_at come from the history's last row
    assert rows(result.data.deals, "deal_id", "outcome", "closed_at") == [
        ("1", "won", utc("2024-02-01")),
        ("2", None, None),
    ]


def test_outcome_column_with_a_loss_horizon(tmp_path, funnel):
    raw = {
        "deals": {
            "input": "d.csv",
            "columns": {"deal_id": "id", "created_at": "created", "closed_at": "converted_at"},
            "outcome": {
                "column": "converted",
                "values": {"yes": "won", "no": "open"},
                "not_won": "lost",
                "lost_after_days": 30,
            },
        }
    }
    files = {
        "d.csv": "id,created,converted,converted_at\n"
        "1,2024-01-01,yes,2024-01-10\n"
        "2,2024-01-05,no,\n"
        "3,2024-03-01,no,\n"
    }
    result = _import(tmp_path, raw, files, funnel)
    # the export date defaults to the latest date in the deals: 2024-03-01
    assert rows(result.data.deals, "deal_id", "outcome", "closed_at") == [
        ("1", "won", utc("2024-01-10")),
        ("2", "lost", utc("2024-02-04")),
        ("3", None, None),
    ]


def test_change_log_with_previous_stage(tmp_path, funnel):
    raw = {
        "stages": {"New": "lead", "Demo": "meeting", "Won": "won"},
        "deals": {"input": "d.csv", "columns": {"deal_id": "id", "created_at": "created"}},
        "stage_history": {
            "input": "changes.csv",
            "where": {"field": "Stage"},
            "columns": {
                "deal_id": "deal",
                "stage": "new",
                "previous_stage": "old",
                "entered_at": "at",
            },
        },
    }
    files = {
        "d.csv": "id,created\n1,2024-01-01\n2,2024-01-02\n",
        "changes.csv": "deal,field,old,new,at\n"
        "1,Stage,New,Demo,2024-01-05\n"
        "1,Amount,100,200,2024-01-06\n"
        "1,Stage,Demo,Won,2024-01-09\n",
    }
    result = _import(tmp_path, raw, files, funnel)
    assert rows(result.data.stage_history, "deal_id", "stage", "entered_at") == [
        ("1", "lead", utc("2024-01-01")),  # derived: 'old' of the first change, at created_at
        ("1", "meeting", utc("2024-01-05")),
        ("1", "won", utc("2024-01-09")),
    ]
    assert left_out(result.summary, "changes.csv", "stage_history") == {
        "filtered out by where: field not in [Stage]": 1
    }
    assert rows(result.data.deals, "deal_id", "outcome") == [("1", "won"), ("2", None)]


DOCS = FIXTURES.parents[3] / "docs" / "importers" / "examples"


@pytest.mark.parametrize("path", sorted(DOCS.glob("*.yaml")), ids=lambda p: p.name)
def test_documented_example_files_are_valid(path):
    if path.name in ("salesforce-map.yaml", "hubspot-map.yaml"):
        load_vendor_map(path)
    else:
        load_mapping(path)
