"""Issue 16 items 7 and 8 (importers): an import is written to a staging folder beside
--out, validated there, and replaces the tables in --out only when valid (or with --force).
Options and inputs no reader can use end in one message and exit 2, not a traceback."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from leads_fixtures import assert_clean_exit_2, invoke

ROOT = Path(__file__).resolve().parents[2]
SF = ROOT / "tests/crm/importers/fixtures/salesforce"
MAPPED = ROOT / "tests/crm/importers/fixtures/mapped"


def _import(*args, params):
    return invoke("import", *args, "--params", params)


def _valid(out: Path, params) -> dict[str, bytes]:
    result = _import("salesforce", "--from", SF, "--map", SF / "map.yaml", "--out", out,
                     params=params)  # fmt: skip
    assert result.exit_code == 0, result.output
    return {p.name: p.read_bytes() for p in out.iterdir()}


def _invalid(out: Path, params, *extra):
    # without the map, the stage 'Discovery' is unknown: the validation fails
    return _import("salesforce", "--from", SF, "--date-format", "%m/%d/%Y", "--out", out,
                   *extra, params=params)  # fmt: skip


def _hidden(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.startswith(".")]


def test_an_invalid_import_leaves_a_valid_folder_as_it_was(tmp_path, params_file):
    out = tmp_path / "crm"
    before = _valid(out, params_file)
    (out / "notes.txt").write_text("mine")
    result = _invalid(out, params_file)
    assert_clean_exit_2(result, "ERROR [unknown_stage]", "left as it was", "--force")
    after = {p.name: p.read_bytes() for p in out.iterdir() if p.name != "notes.txt"}
    assert after == before
    assert _hidden(tmp_path) == []  # the staging folder is gone


def test_an_invalid_import_into_a_new_folder_writes_nothing(tmp_path, params_file):
    result = _invalid(tmp_path / "new", params_file)
    assert_clean_exit_2(result, "not written")
    assert not (tmp_path / "new").exists()


def test_force_writes_invalid_tables_and_still_exits_2(tmp_path, params_file):
    out = tmp_path / "crm"
    before = _valid(out, params_file)
    result = _invalid(out, params_file, "--force")
    assert result.exit_code == 2, result.output
    assert "wrote" in result.output
    assert {p.name: p.read_bytes() for p in out.iterdir()} != before


def test_a_crashed_imports_staging_folder_is_removed_next_time(tmp_path, params_file):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    dead = int(proc.stdout)
    stale = tmp_path / f".crm.import.{dead}.0badf00d"
    stale.mkdir()
    (stale / "deals.csv").write_text("half")
    _valid(tmp_path / "crm", params_file)
    assert _hidden(tmp_path) == []


@pytest.mark.parametrize(
    ("setup", "needle"),
    [
        (lambda d: None, "command-line option: decimal"),
        (lambda d: _edit_mapping(d, 'date_format: "%Q"'), "'Q' is a bad directive"),
        (lambda d: _edit_mapping(d, 'delimiter: "abc"'), "check the parsing options"),
    ],
    ids=["decimal-x", "date-format-%Q", "delimiter-abc"],
)
def test_parsing_options_no_reader_can_use_exit_2(tmp_path, params_file, setup, needle):
    if needle.startswith("command-line"):
        result = _import("salesforce", "--from", SF, "--map", SF / "map.yaml", "--decimal", "x",
                         "--out", tmp_path / "o", params=params_file)  # fmt: skip
    else:
        source = shutil.copytree(MAPPED, tmp_path / "src")
        setup(source)
        result = _import("mapped", "--config", source / "mapping.yaml", "--out",
                         tmp_path / "o", params=params_file)  # fmt: skip
    assert_clean_exit_2(result, needle)
    assert not (tmp_path / "o").exists()


def _edit_mapping(folder: Path, line: str) -> None:
    path = folder / "mapping.yaml"
    text = path.read_text(encoding="utf-8")
    key = line.split(":")[0]
    lines = [
        s[: len(s) - len(s.lstrip())] + line if s.strip().startswith(f"{key}:") else s
        for s in text.splitlines()
    ]
    assert lines != text.splitlines()
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_a_garbage_workbook_exits_2(tmp_path, params_file):
    source = shutil.copytree(SF, tmp_path / "sf")
    (source / "Opportunity.csv").unlink()
    (source / "Opportunity.xlsx").write_bytes(b"PK\x03\x04 not really a workbook" * 50)
    result = _import("salesforce", "--from", source, "--map", source / "map.yaml", "--out",
                     tmp_path / "o", params=params_file)  # fmt: skip
    assert_clean_exit_2(result, "Opportunity.xlsx")


def test_an_input_that_is_not_a_file_exits_2(tmp_path, params_file):
    source = shutil.copytree(SF, tmp_path / "sf")
    (source / "Account.csv").unlink()
    (source / "Account.csv").mkdir()
    result = _import("salesforce", "--from", source, "--map", source / "map.yaml", "--out",
                     tmp_path / "o", params=params_file)  # fmt: skip
    assert_clean_exit_2(result, "Account.csv: not a regular file")


def test_an_unreadable_input_exits_2(tmp_path, params_file, monkeypatch):
    import crm.importers.reading as reading

    def denied(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(reading, "_read_csv", denied)  # root ignores chmod 000
    result = _import("salesforce", "--from", SF, "--map", SF / "map.yaml", "--out",
                     tmp_path / "o", params=params_file)  # fmt: skip
    assert_clean_exit_2(result, "cannot read the input", "Permission denied")


def test_out_that_is_a_file_or_under_a_file_exits_2(tmp_path, params_file):
    (tmp_path / "afile").write_text("x")
    for out, needle in ((tmp_path / "afile", "is a file, not a folder"),
                        (tmp_path / "afile" / "sub", "is a file, not a folder")):  # fmt: skip
        result = _import("salesforce", "--from", SF, "--map", SF / "map.yaml", "--out", out,
                         params=params_file)  # fmt: skip
        assert_clean_exit_2(result, "--out", needle)
