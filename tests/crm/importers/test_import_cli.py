"""``dealcast import ...`` as a user meets it: summary, validation report, exit codes."""

from __future__ import annotations

import json

import pytest
from importer_helpers import FIXTURES
from typer.testing import CliRunner

from pipelines.cli_import import import_app

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(import_app, [str(a) for a in args], catch_exceptions=False)


@pytest.mark.parametrize(
    ("command", "options"),
    [
        (
            "salesforce",
            ["--from", FIXTURES / "salesforce", "--map", FIXTURES / "salesforce" / "map.yaml"],
        ),
        ("hubspot", ["--from", FIXTURES / "hubspot", "--map", FIXTURES / "hubspot" / "map.yaml"]),
        ("mapped", ["--config", FIXTURES / "mapped" / "mapping.yaml"]),
        ("mapped", ["--config", FIXTURES / "snapshots" / "mapping.yaml"]),
        ("mapped", ["--config", FIXTURES / "eventlog" / "mapping.yaml"]),
        ("mapped", ["--config", FIXTURES / "wonlist" / "mapping.yaml"]),
    ],
)
def test_each_importer_writes_a_valid_folder(command, options, tmp_path, params_file):
    out = tmp_path / "crm"
    result = invoke(command, *options, "--out", out, "--params", params_file)
    assert result.exit_code == 0, result.output
    assert "Import summary" in result.output
    assert "data is usable" in result.output or "No problems found." in result.output
    assert (out / "deals.csv").is_file()


def test_parquet_and_json_report(tmp_path, params_file):
    out, report = tmp_path / "crm", tmp_path / "import.json"
    result = invoke(
        "mapped",
        "--config",
        FIXTURES / "eventlog" / "mapping.yaml",
        "--out",
        out,
        "--format",
        "parquet",
        "--report",
        report,
        "--params",
        params_file,
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "deals.parquet",
        "stage_history.parquet",
        "touchpoints.parquet",
    ]
    payload = json.loads(report.read_text())
    assert payload["import"]["read"] == {"events.csv": 18}
    assert payload["validation"]["ok"] is True


def test_unusable_input_is_one_message_and_exit_2(tmp_path, params_file):
    result = invoke(
        "salesforce",
        "--from",
        FIXTURES / "salesforce",
        "--out",
        tmp_path / "o",
        "--params",
        params_file,
    )
    assert result.exit_code == 2
    assert "dealcast: error: Task.csv, column 'Date'" in result.output
    assert "--date-format '%m/%d/%Y'" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "o").exists()


def test_validation_errors_exit_2(tmp_path, params_file):
    result = invoke(
        "salesforce",
        "--from",
        FIXTURES / "salesforce",
        "--out",
        tmp_path / "o",
        "--date-format",
        "%m/%d/%Y",
        "--params",
        params_file,
    )
    assert result.exit_code == 2
    assert "stage names not mapped: 'Discovery'" in result.output
    assert "ERROR [unknown_stage]" in result.output


def test_out_must_not_be_the_input_folder(tmp_path, params_file):
    (tmp_path / "m.yaml").write_text("deals: {input: d.csv, columns: {deal_id: a, created_at: b}}")
    result = invoke(
        "mapped", "--config", tmp_path / "m.yaml", "--out", tmp_path, "--params", params_file
    )
    assert result.exit_code == 2
    assert "is the folder of the input files" in result.output


def test_typo_in_mapping_file(tmp_path, params_file):
    (tmp_path / "m.yaml").write_text("deals: {input: d.csv, colums: {deal_id: a}}")
    result = invoke(
        "mapped", "--config", tmp_path / "m.yaml", "--out", tmp_path / "o", "--params", params_file
    )
    assert result.exit_code == 2
    assert "deals.colums: unknown key; did you mean 'columns'?" in result.output


DOCS = FIXTURES.parents[3] / "docs" / "importers" / "examples"
REAL = {
    "snapshot-report.yaml": "snapshot_report",
    "event-log.yaml": "event_log",
    "won-list.yaml": "won_list",
    "pipeline-export.yaml": "pipeline",
}


@pytest.mark.parametrize(("example", "kind"), REAL.items())
def test_documented_examples_import_real_exports_without_params(
    example, kind, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # no params.yaml here: the mapping carries the funnel
    config, source = DOCS / example, FIXTURES / "real" / kind
    result = invoke("mapped", "--config", config, "--from", source, "--out", "data/raw")
    assert result.exit_code == 0, result.output
    snippet = tmp_path / "data" / "raw" / "funnel.yaml"
    assert snippet.is_file()
    assert "params.yaml does not exist. Before `dealcast features`, replace" in result.output
    assert "funnel:\n  stages: [" in snippet.read_text()


def test_the_funnel_snippet_says_when_params_differ_or_match(tmp_path, params_file):
    config, source = DOCS / "event-log.yaml", FIXTURES / "real" / "event_log"
    out = tmp_path / "crm"
    options = ("--config", config, "--from", source, "--out", out, "--params", params_file)
    result = invoke("mapped", *options)
    assert result.exit_code == 0, result.output
    assert (
        f"{params_file} has stages [lead, qualified, meeting, proposal, negotiation] instead "
        "of [submitted, accepted, offer_sent, validating]"
    ) in result.output
    params_file.write_text(
        params_file.read_text().replace(
            "stages:\n  - lead\n  - qualified\n  - meeting\n  - proposal\n  - negotiation",
            "stages: [submitted, accepted, offer_sent, validating]",
        )
    )
    result = invoke("mapped", *options)
    assert f"The mapping's funnel (written to {out / 'funnel.yaml'}) matches" in result.output
