"""Issue 16 item 8: output paths that cannot be written and a report date before any
history end in one message and exit 2 (no traceback), before any long work is done."""

from __future__ import annotations

import pytest
from leads_fixtures import assert_clean_exit_2, invoke, tiny_crm

import pipelines.io


@pytest.fixture
def afile(tmp_path):
    path = tmp_path / "afile"
    path.write_text("not a folder")
    return path


def _cases(afile):
    return [
        (afile, "is a file, not a folder"),
        (afile / "sub", "afile is a file, not a folder"),
    ]


def test_score_out_that_is_a_file_or_under_a_file(tmp_path, params_file, afile):
    crm = tiny_crm(tmp_path / "crm")
    for out, needle in _cases(afile):
        result = invoke("score", "--data", crm, "--out", out, "--params", params_file)
        assert_clean_exit_2(result, "--out", needle)


def test_report_out_that_is_a_file_or_under_a_file(tmp_path, params_file, afile):
    crm = tiny_crm(tmp_path / "crm")
    for out, needle in _cases(afile):
        result = invoke("report", "--data", crm, "--out", out, "--params", params_file)
        assert_clean_exit_2(result, "--out", needle)


def test_validate_report_that_is_a_folder_or_under_a_file(tmp_path, params_file, afile):
    crm = tiny_crm(tmp_path / "crm")
    for report, needle in ((tmp_path, "is a folder"), (afile / "r.json", "is a file")):
        result = invoke("validate", crm, "--report", report, "--params", params_file)
        assert_clean_exit_2(result, "--report", needle)


def test_an_unwritable_out_folder(tmp_path, params_file, monkeypatch):
    crm = tiny_crm(tmp_path / "crm")

    def denied(*args, **kwargs):  # root ignores chmod, so the file system says no here
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(pipelines.io.tempfile, "mkstemp", denied)
    for command in ("score", "report"):
        result = invoke(command, "--data", crm, "--out", tmp_path / "o", "--params", params_file)
        assert_clean_exit_2(result, "--out", "cannot be written: Permission denied")
    result = invoke("validate", crm, "--report", tmp_path / "r.json", "--params", params_file)
    assert_clean_exit_2(result, "--report", "cannot be written")


def test_an_os_error_no_step_expected_is_a_clean_exit(tmp_path, params_file, monkeypatch):
    crm = tiny_crm(tmp_path / "crm")

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device", str(tmp_path / "r.json"))

    monkeypatch.setattr(pipelines.io, "write_bytes_atomic", full)
    result = invoke("validate", crm, "--report", tmp_path / "r.json", "--params", params_file)
    assert_clean_exit_2(result, "r.json: No space left on device")


def test_report_as_of_before_any_history(tmp_path, params_file):
    crm = tiny_crm(tmp_path / "crm")
    result = invoke(
        "report", "--data", crm, "--as-of", "2000-01-01", "--out", tmp_path / "r",
        "--params", params_file,
    )  # fmt: skip
    assert_clean_exit_2(result, "--as-of 2000-01-01", "before the data's history starts")
    assert not (tmp_path / "r").exists()
