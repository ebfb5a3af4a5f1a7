"""Stage history from a snapshot report (fixtures/snapshots/) and from an event log
(fixtures/eventlog/), and the snapshot diff on its own."""

from __future__ import annotations

import pandas as pd
import pytest
from importer_helpers import (
    DEFAULT_FUNNEL,
    DERIVED,
    FIXTURES,
    NOWHERE,
    left_out,
    rows,
    utc,
    write_and_validate,
)

from crm.importers.common import LINE, SRC, ImportSummary
from crm.importers.mapped import import_mapped
from crm.importers.snapshots import history_from_snapshots

# snapshot dates 01/08/15/22 March 2024, midnight in Berlin = 23:00 UTC the day before
MAR01 = utc("2024-02-29T23:00")
MAR08, MAR15, MAR22 = (utc(f"2024-03-{d:02d}T23:00") for d in (7, 14, 21))


@pytest.fixture(scope="module")
def snapshots():
    return import_mapped(FIXTURES / "snapshots" / "mapping.yaml", funnel=DEFAULT_FUNNEL)


def test_stage_changes_between_snapshots(snapshots):
    assert rows(snapshots.data.stage_history, "deal_id", "stage", "entered_at") == [
        ("A", "lead", MAR01),
        ("A", "meeting", MAR15),  # no change on 08.03: not a row
        ("A", "proposal", MAR22),
        ("B", "qualified", MAR01),
        ("B", "proposal", MAR08),
        ("B", "qualified", MAR15),  # backwards
        ("B", "lost", MAR22),
        ("C", "meeting", MAR08),  # "Demo Scheduled", renamed "Demo booked" on 15.03
        ("C", "won", MAR22),
        ("D", "lead", MAR01),
        ("D", "lost", MAR15),  # vanished after 08.03 (vanished: lost)
        ("E", "negotiation", MAR15),
    ]


def test_deals_from_snapshots(snapshots):
    assert rows(
        snapshots.data.deals, "deal_id", "created_at", "amount", "outcome", "closed_at"
    ) == [
        ("A", utc("2024-02-19T23:00"), 1000.0, None, None),  # Created column; first amount
        ("B", MAR01, 2500.0, "lost", MAR22),
        ("D", MAR01, None, "lost", MAR15),
        ("C", MAR08, 900.0, "won", MAR22),
        ("E", MAR15, 5000.0, None, None),
    ]
    s = snapshots.summary
    assert s.flows["pipeline_snapshots.csv"]["deals"].combined == 11  # 16 rows, 5 deals
    assert left_out(s, "pipeline_snapshots.csv", "stage_history") == {
        "no stage change since the deal's previous snapshot": 4,
        "another row of the deal in the same snapshot (a product line or a repeat; the "
        "deal's last row in the snapshot was used)": 1,
    }
    assert s.flows[DERIVED]["stage_history"].landed == 1  # D's lost row


def test_snapshot_output_is_valid(snapshots, tmp_path, funnel):
    loaded = write_and_validate(snapshots.data, tmp_path / "crm", funnel)
    assert loaded.report.ok, loaded.report.to_text()


def test_vanished_deals_stay_open_by_default():
    frame = pd.DataFrame(
        {
            "deal_id": ["x", "x", "y", "y", "y"],
            "stage": ["lead", "lead", "lead", "qualified", "qualified"],
            "snapshot_at": [utc("2024-01-01"), utc("2024-01-08")]
            + [utc("2024-01-01"), utc("2024-01-08"), utc("2024-01-15")],
            SRC: "s.csv",
            LINE: [2, 3, 4, 5, 6],
        }
    )
    summary = ImportSummary("test")
    out = history_from_snapshots(frame, summary)
    assert rows(out, "deal_id", "stage", "entered_at") == [
        ("x", "lead", utc("2024-01-01")),
        ("y", "lead", utc("2024-01-01")),
        ("y", "qualified", utc("2024-01-08")),
    ]
    assert "1 deal vanished" in summary.notes[0] and "kept open" in summary.notes[0]


@pytest.fixture(scope="module")
def eventlog():
    return import_mapped(FIXTURES / "eventlog" / "mapping.yaml", funnel=DEFAULT_FUNNEL)


def test_event_log_stage_history(eventlog):
    assert rows(eventlog.data.stage_history, "deal_id", "stage", "entered_at") == [
        ("c1", "lead", utc("2024-01-05T09:00")),  # +01:00 offsets converted to UTC
        ("c1", "qualified", utc("2024-01-08T08:30")),
        ("c1", "meeting", utc("2024-01-12T13:00")),
        ("c1", "proposal", utc("2024-01-20T15:00")),
        ("c1", "won", utc("2024-02-01T11:00")),
        ("c2", "lead", utc("2024-01-07T09:00")),
        ("c2", "qualified", utc("2024-01-10T10:00")),
        ("c2", "proposal", utc("2024-01-15T10:00")),
        ("c2", "qualified", utc("2024-01-25T10:00")),  # backwards
        ("c2", "lost", utc("2024-02-05T10:00")),
        ("c3", "lead", utc("2024-01-10T10:00")),
        ("c3", "proposal", utc("2024-01-18T10:00")),  # "Offer sent (v2)", then "Offer sent"
    ]


def test_event_log_deals_and_touchpoints(eventlog):
    assert rows(eventlog.data.deals, "deal_id", "created_at", "amount", "outcome") == [
        ("c1", utc("2024-01-05T09:00"), 20000.0, "won"),
        ("c2", utc("2024-01-07T09:00"), 5000.0, "lost"),
        ("c3", utc("2024-01-10T10:00"), None, None),
    ]
    assert rows(eventlog.data.touchpoints, "deal_id", "channel", "direction", "contact_id") == [
        ("c1", "call", "outbound", "p1"),
        ("c2", "email", "inbound", "p2"),
        ("c1", "meeting", None, "p1"),  # "Meeting held" is a stage and a touch
    ]
    assert left_out(eventlog.summary, "events.csv", NOWHERE) == {
        "no deal_id, activity or timestamp": 1,
        "activity not in events.activities": 1,
        "activity mapped to null (ignored)": 1,
    }
    assert eventlog.summary.unmapped["activity"] == {"Send reminder": 1}


def test_event_log_output_is_valid(eventlog, tmp_path, funnel):
    loaded = write_and_validate(eventlog.data, tmp_path / "crm", funnel)
    assert loaded.report.ok, loaded.report.to_text()
