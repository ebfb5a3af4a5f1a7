"""Property: any corruption of a valid CRM folder is caught, and loading never raises.

Start from the small valid CRM of conftest.py, apply one to three random corruptions
(each of which alone must make the data unusable), and check that ``load_crm`` returns
a report with errors and no data: the CLI would exit 2 instead of crashing or, worse,
accepting broken data.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm.load import load_crm
from crm.schemas import CONTRACT, TABLES

Model = dict[str, list[list[str]]]  # table -> rows of cells, header first

#: More examples for a deeper (slower) run: CRM_FUZZ_EXAMPLES=2000 pytest ...
EXAMPLES = int(os.environ.get("CRM_FUZZ_EXAMPLES", "50"))
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
GARBAGE = st.text(
    alphabet=st.characters(blacklist_characters=',"\r\n', blacklist_categories=("Cs", "Cc")),
    max_size=8,
).map(lambda s: "x" + s)


def parse(tables: dict[str, str]) -> Model:
    return {name: [line.split(",") for line in text.splitlines()] for name, text in tables.items()}


def column_of(model: Model, table: str, name: str) -> int | None:
    header = model[table][0]
    return header.index(name) if name in header else None


def pick_cell(data, model: Model, table: str, kinds: tuple[str, ...]) -> tuple[int, int] | None:
    """A (row, column) of a data cell whose contract column has one of ``kinds``."""
    names = [c.name for c in CONTRACT[table].columns if c.kind in kinds]
    columns = [i for n in names if (i := column_of(model, table, n)) is not None]
    if not columns:
        return None
    row = data.draw(st.integers(1, len(model[table]) - 1))
    return row, data.draw(st.sampled_from(columns))


# --------------------------------------------------------------------------- corruptions
# Each takes (data, model) and changes the model in place so the folder has an error.


def drop_required_column(data, model: Model) -> None:
    table = data.draw(st.sampled_from(list(model)))
    present = [
        c for c in CONTRACT[table].required_columns if column_of(model, table, c) is not None
    ]
    if not present:
        return
    i = column_of(model, table, data.draw(st.sampled_from(present)))
    model[table] = [row[:i] + row[i + 1 :] for row in model[table]]


def blank_required_cell(data, model: Model) -> None:
    table = data.draw(st.sampled_from(list(model)))
    required = [
        c for c in CONTRACT[table].required_columns if column_of(model, table, c) is not None
    ]
    if required:
        i = column_of(model, table, data.draw(st.sampled_from(required)))
        row = data.draw(st.integers(1, len(model[table]) - 1))
        model[table][row][i] = data.draw(st.sampled_from(["", " ", "\t"]))


def garbage_in_typed_cell(data, model: Model) -> None:
    table = data.draw(st.sampled_from(list(model)))
    cell = pick_cell(data, model, table, ("timestamp", "date", "number", "integer"))
    if cell is not None:
        model[table][cell[0]][cell[1]] = data.draw(GARBAGE)


def duplicate_id_row(data, model: Model) -> None:
    table = data.draw(st.sampled_from(["deals", "accounts", "touchpoints"]))
    key = CONTRACT[table].key
    i = column_of(model, table, key)
    rows = [r for r in model[table][1:] if i is not None and r[i].strip()]
    if rows:
        model[table].append(list(data.draw(st.sampled_from(rows))))


def flip_outcome(data, model: Model) -> None:
    """Closed deal without outcome, or open deal with one."""
    outcome, closed = column_of(model, "deals", "outcome"), column_of(model, "deals", "closed_at")
    if outcome is None or closed is None:
        return
    row = data.draw(st.integers(1, len(model["deals"]) - 1))
    cells = model["deals"][row]
    cells[outcome] = "" if cells[closed].strip() else data.draw(st.sampled_from(["won", "lost"]))


def negative_amount(data, model: Model) -> None:
    table, column = data.draw(
        st.sampled_from(
            [("deals", "amount"), ("accounts", "employees"), ("accounts", "annual_revenue")]
        )
    )
    i = column_of(model, table, column)
    if i is not None:
        row = data.draw(st.integers(1, len(model[table]) - 1))
        model[table][row][i] = f"-{data.draw(st.integers(1, 10**6))}"


def unknown_outcome_or_stage(data, model: Model) -> None:
    table, column = data.draw(st.sampled_from([("deals", "outcome"), ("stage_history", "stage")]))
    i = column_of(model, table, column)
    if i is not None:
        row = data.draw(st.integers(1, len(model[table]) - 1))
        model[table][row][i] = data.draw(GARBAGE)


CELL_CORRUPTIONS = [
    drop_required_column,
    blank_required_cell,
    garbage_in_typed_cell,
    duplicate_id_row,
    flip_outcome,
    negative_amount,
    unknown_outcome_or_stage,
]


def serialise(model: Model) -> dict[str, bytes]:
    return {t: ("\n".join(",".join(r) for r in rows) + "\n").encode() for t, rows in model.items()}


def corrupt_bytes(data, files: dict[str, bytes]) -> None:
    """File-level corruptions: separators, bad bytes, truncation, random content."""
    table = data.draw(st.sampled_from(list(files)))
    content = files[table]
    kind = data.draw(st.sampled_from(["separator", "utf8", "truncate", "random"]))
    if kind == "separator":
        files[table] = content.replace(b",", data.draw(st.sampled_from([b";", b"\t"])))
    elif kind == "utf8":
        at = data.draw(st.integers(0, len(content)))
        bad = data.draw(st.sampled_from([b"\xff", b"\xe9", b"\x80", b"\xc3(", b"\xfe\xff"]))
        files[table] = content[:at] + bad + content[at:]
    elif kind == "truncate":
        files[table] = content.split(b"\n", 1)[0] + data.draw(st.sampled_from([b"", b"\n"]))
    else:
        files[table] = data.draw(st.binary(max_size=300))


@SETTINGS
@given(data=st.data())
def test_any_corruption_is_an_error_and_never_raises(data, valid_tables, funnel):
    model = parse(valid_tables)
    n_cell = data.draw(st.integers(0, 2))
    for _ in range(n_cell):
        data.draw(st.sampled_from(CELL_CORRUPTIONS))(data, model)
    files = serialise(model)
    if n_cell == 0 or data.draw(st.booleans()):
        corrupt_bytes(data, files)
    if files == serialise(parse(valid_tables)):
        return  # every drawn corruption was a no-op (e.g. flipping then flipping back)
    with tempfile.TemporaryDirectory() as tmp:
        for table, content in files.items():
            (Path(tmp) / f"{table}.csv").write_bytes(content)
        result = load_crm(Path(tmp), funnel=funnel, as_of=pd.Timestamp("2025-01-01", tz="UTC"))
    report = result.report
    assert not report.ok, "corruption accepted:\n" + "\n".join(
        f"--- {t}\n{c!r}" for t, c in files.items()
    )
    assert result.data is None
    assert "internal_error" not in report.rules(), report.to_text()
    for f in report.errors:
        assert f.table in TABLES
        assert all(r >= 1 for r in f.rows)
        assert f.count >= len(f.rows)
    report.to_text()  # renders without raising
    report.to_dict()


@settings(SETTINGS, max_examples=max(EXAMPLES * 2 // 3, 1))
@given(content=st.binary(max_size=400), table=st.sampled_from(TABLES))
def test_random_bytes_in_any_table_never_raise(content, table, valid_tables, funnel):
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "deals.csv").write_text(valid_tables["deals"])
        (Path(tmp) / f"{table}.csv").write_bytes(content)
        result = load_crm(Path(tmp), funnel=funnel, as_of=None)
    assert not result.report.ok and result.data is None
    assert "internal_error" not in result.report.rules(), result.report.to_text()
