"""Issue 16 item 6: a table that is not a regular file (a folder, a link to /dev/zero, a
FIFO, a broken link) is an error naming the file, never a silently missing table."""

from __future__ import annotations

import os

import pytest
from leads_fixtures import assert_clean_exit_2, invoke, tiny_crm


def _folder(path):
    path.mkdir()


def _dev_zero(path):
    path.symlink_to("/dev/zero")


def _fifo(path):
    os.mkfifo(path)


def _broken_link(path):
    path.symlink_to(path.parent / "nowhere.csv")


@pytest.mark.parametrize(
    ("make", "what"),
    [
        (_folder, "is a folder"),
        (_dev_zero, "is a link to a character device (/dev/zero)"),
        (_fifo, "is a named pipe (FIFO)"),
        (_broken_link, "is a broken link"),
    ],
)
@pytest.mark.parametrize("table", ["stage_history", "touchpoints", "deals"])
def test_validate_refuses_a_table_that_is_not_a_regular_file(
    tmp_path, params_file, make, what, table
):
    crm = tiny_crm(tmp_path / "crm", **{f"{table}_csv": None})
    make(crm / f"{table}.csv")
    result = invoke("validate", crm, "--params", params_file)
    assert_clean_exit_2(result, "[not_a_file]", f"{table}.csv {what}, not a regular file")
    assert "No problems found" not in result.output
    if table == "deals":
        assert "[missing_table]" not in result.output  # one finding, not two


def test_a_link_to_a_regular_file_is_read(tmp_path, params_file):
    crm = tiny_crm(tmp_path / "crm", stage_history_csv=None)
    (tmp_path / "elsewhere.csv").write_text(
        "deal_id,stage,entered_at\nD1,lead,2024-01-05T10:00:00Z\n", encoding="utf-8"
    )
    (crm / "stage_history.csv").symlink_to(tmp_path / "elsewhere.csv")
    result = invoke("validate", crm, "--params", params_file, "--as-of", "2025-01-01")
    assert result.exit_code == 0, result.output
    assert "not_a_file" not in result.output
