"""Mapping features for rows that must be combined or corrected: per-column combine rules,
join aggregation, earliest/latest of, close dates before creation, the corrected notes, the
funnel a mapping carries, and the snapshot cadence on small hand-made inputs."""

from __future__ import annotations

import pandas as pd
import pytest
from importer_helpers import left_out, rows, utc

from crm.importers.common import LINE, SRC, ImportInputError, ImportSummary
from crm.importers.funnel_file import funnel_difference, funnel_snippet
from crm.importers.mapped import import_mapped
from crm.importers.mapping import parse_mapping
from crm.importers.snapshots import history_from_snapshots
from crm.schemas import Funnel

STATUS = {"column": "status", "values": {"open": "open", "won": "won", "lost": "lost"}}


def _import(tmp_path, raw: dict, files: dict[str, str], funnel):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return import_mapped(parse_mapping(raw), funnel=funnel, base=tmp_path)


def _notes(result) -> str:
    return "\n".join(result.summary.notes)


LINES = (
    "id,seen,created,status,product,price\n"
    "A,2024-01-08,2024-01-02,open,licence,100\n"
    "A,2024-01-08,2024-01-02,open,support,20\n"
    "A,2024-01-15,2024-01-02,lost,licence,100\n"
    "A,2024-01-22,2024-01-02,open,licence,150\n"
    "B,2024-01-08,2024-01-03,open,licence,70\n"
    "B,2024-01-15,2024-01-03,open,,\n"
)


def test_default_combine_takes_the_latest_status_even_when_open(tmp_path, funnel):
    raw = {
        "deals": {
            "input": "lines.csv",
            "columns": {"deal_id": "id", "created_at": "created", "amount": "price"},
            "order_by": "seen",
            "outcome": STATUS,
        }
    }
    deals = _import(tmp_path, raw, {"lines.csv": LINES}, funnel).data.deals
    # A was lost on 15 Jan and reopened on 22 Jan: open (the latest status), amount first
    assert rows(deals, "deal_id", "outcome", "amount") == [("A", None, 100.0), ("B", None, 70.0)]


def test_combine_rules_sum_count_max_last(tmp_path, funnel):
    raw = {
        "deals": {
            "input": "lines.csv",
            "columns": {"deal_id": "id", "created_at": "created", "amount": "price"},
            "attributes": {"line_items": "product", "last_seen": {"column": "seen"}},
            "order_by": "seen",
            "combine": {"amount": "sum", "line_items": "count", "last_seen": "max"},
        }
    }
    deals = _import(tmp_path, raw, {"lines.csv": LINES}, funnel).data.deals
    assert rows(deals, "deal_id", "amount", "line_items", "last_seen") == [
        ("A", 370.0, 4.0, "2024-01-22"),
        ("B", 70.0, 1.0, "2024-01-15"),
    ]


def test_combine_names_a_column_that_is_not_mapped():
    with pytest.raises(ImportInputError, match=r"combine names 'amunt', which is not a mapped"):
        parse_mapping(
            {
                "deals": {
                    "input": "x.csv",
                    "columns": {"deal_id": "id", "created_at": "c"},
                    "combine": {"amunt": "sum"},
                }
            }
        )


def test_join_agg_sums_product_lines_and_counts_them(tmp_path, funnel):
    files = {
        "deals.csv": "id,created\n1,2024-01-01\n2,2024-01-02\n3,2024-01-03\n",
        "lines.csv": 'deal,product,sum\n1,a,"1,000.50"\n1,b,200\n2,a,300\n9,a,5\n',
    }
    raw = {
        "deals": {
            "input": "deals.csv",
            "join": {"input": "lines.csv", "on": {"id": "deal"}, "agg": {"sum": "sum"}},
            "columns": {"deal_id": "id", "created_at": "created", "amount": "sum"},
        }
    }
    result = _import(tmp_path, raw, files, funnel)
    assert rows(result.data.deals, "deal_id", "amount") == [
        ("1", 1200.5),
        ("2", 300.0),
        ("3", None),
    ]
    flow = result.summary.flows["lines.csv"]["joined into deals.csv"]
    assert flow.landed == 3  # every line of a matched deal is used, none "repeats a key"
    assert left_out(result.summary, "lines.csv", "joined into deals.csv") == {
        "matches no row of deals.csv": 1
    }


def test_earliest_of_and_latest_of_two_date_columns(tmp_path, funnel):
    files = {
        "d.csv": "id,created,first_call,won,lost\n"
        "1,2024-02-01,2024-01-20,2024-03-01,\n"
        "2,2024-02-01,,,2024-02-10\n"
        "3,,2024-01-05,2024-04-01,2024-02-01\n"  # lost, reopened, won
        "4,not a date,2024-01-07,,\n"
    }
    raw = {
        "deals": {
            "input": "d.csv",
            "columns": {
                "deal_id": "id",
                "created_at": {"earliest_of": ["created", "first_call"]},
                "closed_at": {"latest_of": ["won", "lost"]},
            },
            "outcome": {"column": "won", "values": {}, "not_won": "open"},
        }
    }
    raw["deals"].pop("outcome")
    raw["deals"]["stage"] = {"value": "lead"}
    result = _import(tmp_path, raw, files, funnel)
    created = dict(rows(result.data.deals, "deal_id", "created_at"))
    assert created == {
        "1": utc("2024-01-20"),  # the earlier of the two, not the first non-blank
        "2": utc("2024-02-01"),
        "3": utc("2024-01-05"),
        "4": utc("2024-01-07"),  # unreadable 'created' ignored: first_call has a date
    }
    assert "1 unreadable dates ignored, the other columns gave the date (lines 5)" in _notes(result)


def test_latest_of_gives_the_last_close(tmp_path, funnel):
    files = {"d.csv": "id,created,won,lost,status\n3,2024-01-01,2024-04-01,2024-02-01,won\n"}
    raw = {
        "deals": {
            "input": "d.csv",
            "columns": {
                "deal_id": "id",
                "created_at": "created",
                "closed_at": {"latest_of": ["won", "lost"]},
            },
            "outcome": STATUS,
        }
    }
    deals = _import(tmp_path, raw, files, funnel).data.deals
    assert rows(deals, "outcome", "closed_at") == [("won", utc("2024-04-01"))]


def test_earliest_of_on_a_text_column_is_an_error(tmp_path, funnel):
    raw = {
        "deals": {
            "input": "d.csv",
            "columns": {
                "deal_id": "id",
                "created_at": "created",
                "owner_id": {"earliest_of": ["a", "b"]},
            },
        }
    }
    files = {"d.csv": "id,created,a,b\n1,2024-01-01,x,y\n"}
    with pytest.raises(ImportInputError, match="deals.owner_id: earliest_of compares dates"):
        _import(tmp_path, raw, files, funnel)


# --------------------------------------------------------------------------- close dates

CLOSES = (
    "id,created,closed,status\n"
    "1,2024-03-05T10:00:00,2024-03-05,won\n"  # date-only close before a same-day creation
    "2,2024-09-01,2024-06-15T10:00:00,won\n"  # migrated: created long after the close
    "3,2024-01-01,2024-02-01,lost\n"
)


def _closes(tmp_path, funnel, **extra):
    raw = {
        "deals": {
            "input": "d.csv",
            "columns": {"deal_id": "id", "created_at": "created", "closed_at": "closed"},
            "outcome": STATUS,
            **extra,
        }
    }
    return _import(tmp_path, raw, {"d.csv": CLOSES}, funnel)


def test_same_day_message_says_what_happened(tmp_path, funnel):
    notes = _notes(_closes(tmp_path, funnel, closed_before_created="clamp"))
    assert (
        "closed_at set to created_at for 1 deal whose close came less than a day before "
        "their creation (the close dates have no time of day; the creation dates do), e.g. "
        "deal '1' created 2024-03-05 10:00 UTC, closed 2024-03-05 00:00 UTC"
    ) in notes


def test_same_day_message_when_the_creation_date_has_no_time(tmp_path, funnel):
    files = {"d.csv": "id,created,closed,status\n1,2024-03-05,2024-03-04T18:00:00,won\n"}
    raw = {
        "deals": {
            "input": "d.csv",
            "columns": {"deal_id": "id", "created_at": "created", "closed_at": "closed"},
            "outcome": STATUS,
        }
    }
    notes = _notes(_import(tmp_path, raw, files, funnel))
    assert "(the creation dates have no time of day; the close dates do)" in notes


def test_clamp_counts_and_moves_the_close(tmp_path, funnel):
    result = _closes(tmp_path, funnel, closed_before_created="clamp")
    closed = dict(rows(result.data.deals, "deal_id", "closed_at"))
    assert closed == {"1": utc("2024-03-05T10:00"), "2": utc("2024-09-01"), "3": utc("2024-02-01")}
    assert "closed_at set to created_at for 1 deal closed more than a day before" in _notes(result)


def test_exclude_leaves_the_deal_out(tmp_path, funnel):
    result = _closes(tmp_path, funnel, closed_before_created="exclude")
    assert [d for (d,) in rows(result.data.deals, "deal_id")] == ["3", "1"]
    assert left_out(result.summary, "d.csv", "deals") == {
        "closed before created (closed_before_created: exclude)": 1
    }


def test_keep_is_the_default_and_names_the_fix(tmp_path, funnel):
    result = _closes(tmp_path, funnel)
    assert "set deals.closed_before_created: clamp" in _notes(result)
    assert len(result.data.deals) == 3


def test_a_stale_close_date_before_a_reopening_moves_to_the_last_stage_row(tmp_path, funnel):
    files = {
        "d.csv": "id,created,closed,status\n1,2024-01-01,2024-02-01,won\n",
        "h.csv": "id,stage,at\n1,lead,2024-01-01\n1,lost,2024-02-01\n1,proposal,2024-03-01\n",
    }
    raw = {
        "deals": {
            "input": "d.csv",
            "columns": {"deal_id": "id", "created_at": "created", "closed_at": "closed"},
            "outcome": STATUS,
        },
        "stage_history": {
            "input": "h.csv",
            "columns": {"deal_id": "id", "stage": "stage", "entered_at": "at"},
        },
    }
    result = _import(tmp_path, raw, files, funnel)
    assert rows(result.data.deals, "outcome", "closed_at") == [("won", utc("2024-03-01T00:00:01"))]
    assert rows(result.data.stage_history, "stage")[-2:] == [("proposal",), ("won",)]
    assert "closed_at moved to just after the last stage row for 1 deal" in _notes(result)


# --------------------------------------------------------------------------- messages


def test_a_value_map_note_says_how_many_more(tmp_path, funnel):
    sources = "\n".join(f"{i},2024-01-01,src{i}" for i in range(9))
    files = {"d.csv": "id,created,src\n" + sources + "\n"}
    raw = {
        "deals": {
            "input": "d.csv",
            "columns": {
                "deal_id": "id",
                "created_at": "created",
                "source": {"column": "src", "map": {"web": "web"}},
            },
        }
    }
    notes = _notes(_import(tmp_path, raw, files, funnel))
    assert "deals.source.map does not cover 'src0' (1)," in notes
    assert "'src4' (1) and 4 more; kept as written" in notes


# --------------------------------------------------------------------------- funnel


def test_the_mapping_funnel_wins_and_is_returned(tmp_path):
    files = {"d.csv": "id,created,stage\n1,2024-01-01,Discovery\n2,2024-01-02,Closed Won\n"}
    raw = {
        "funnel": {"stages": ["Discovery", "Demo"], "won_label": "Closed Won"},
        "deals": {
            "input": "d.csv",
            "columns": {"deal_id": "id", "created_at": "created"},
            "stage": "stage",
        },
    }
    result = _import(tmp_path, raw, files, None)
    assert result.funnel == Funnel(("Discovery", "Demo"), "Closed Won", "lost")
    assert rows(result.data.deals, "outcome") == [(None,), ("won",)]


def test_no_funnel_anywhere_is_an_error(tmp_path):
    raw = {"deals": {"input": "d.csv", "columns": {"deal_id": "id", "created_at": "c"}}}
    with pytest.raises(ImportInputError, match="the funnel is unknown"):
        _import(tmp_path, raw, {"d.csv": "id,c\n1,2024-01-01\n"}, None)


def test_funnel_snippet_and_difference():
    ours = Funnel(("Discovery", "Demo"), "Closed Won", "lost")
    text = funnel_snippet(ours, source="m.yaml")
    assert "funnel:\n  stages: [Discovery, Demo]\n  won_label: Closed Won\n" in text
    theirs = Funnel(("lead", "qualified"), "won", "lost")
    assert funnel_difference(ours, theirs) == (
        "stages [lead, qualified] instead of [Discovery, Demo]; "
        "won_label 'won' instead of 'Closed Won'"
    )
    assert funnel_difference(ours, ours) is None


# --------------------------------------------------------------------------- snapshots


def _snapshots(days: list[tuple[str, str, str]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "deal_id": [d for d, _, _ in days],
            "stage": [s for _, s, _ in days],
            "snapshot_at": [utc(t) for _, _, t in days],
            SRC: "s.csv",
            LINE: range(2, 2 + len(days)),
        }
    )


def test_snapshot_every_day_groups_rows_stamped_apart():
    frame = _snapshots(
        [
            ("a", "lead", "2024-01-01T06:00"),
            ("b", "lead", "2024-01-01T06:05"),
            ("a", "qualified", "2024-01-02T06:01"),
            ("b", "lead", "2024-01-02T06:07"),
        ]
    )
    summary = ImportSummary("t")
    out = history_from_snapshots(frame, summary, every="day")
    assert rows(out, "deal_id", "stage", "entered_at") == [
        ("a", "lead", utc("2024-01-01T06:05")),  # dated when the snapshot was complete
        ("a", "qualified", utc("2024-01-02T06:07")),
        ("b", "lead", utc("2024-01-01T06:05")),
    ]
    without = ImportSummary("t")
    history_from_snapshots(frame, without)
    assert "snapshot_at has 4 distinct times on 2 days" in without.notes[0]


def test_a_partial_snapshot_closes_nothing_with_vanished_lost():
    full = [(d, "lead", f"2024-01-{day:02d}") for day in (1, 8, 15) for d in "abcdef"]
    partial = [("a", "lead", "2024-01-22")]
    summary = ImportSummary("t")
    out = history_from_snapshots(_snapshots(full + partial), summary, vanished="lost")
    assert (out["stage"] == "lost").sum() == 0
    assert (
        "1 partial snapshot of 4: 2024-01-22 (1 deals against a median of 6)" in (summary.notes[0])
    )


def test_a_deal_missing_from_a_later_complete_snapshot_still_vanishes():
    days = [(d, "lead", "2024-01-01") for d in "abcd"]
    days += [(d, "lead", "2024-01-08") for d in "abc"]  # d gone: 3 of 4 is not partial
    days += [(d, "lead", "2024-01-15") for d in "abc"]
    summary = ImportSummary("t")
    out = history_from_snapshots(_snapshots(days), summary, vanished="lost")
    assert rows(out[out["stage"] == "lost"], "deal_id", "entered_at") == [("d", utc("2024-01-08"))]


def test_snapshot_options_need_format_snapshots():
    with pytest.raises(ImportInputError, match="snapshot_every only apply to format: snapshots"):
        parse_mapping(
            {
                "deals": {"input": "x.csv", "columns": {"deal_id": "id", "created_at": "c"}},
                "stage_history": {
                    "input": "x.csv",
                    "columns": {"deal_id": "id", "stage": "s", "entered_at": "t"},
                    "snapshot_every": "week",
                },
            }
        )
