"""The ``dealcast`` CLI as a user meets it: exit codes, messages, files written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from pipelines.cli import app

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_console_script_help_runs():
    bin_dir = Path(sys.executable).parent
    out = subprocess.run(
        [str(bin_dir / "dealcast"), "--help"], capture_output=True, text=True, check=True
    )
    for command in ("generate", "validate", "demo"):
        assert command in out.stdout


def test_version_prints_the_package_version_and_exits_0():
    from importlib.metadata import version

    result = invoke("--version")
    assert result.exit_code == 0
    assert result.output == f"dealcast {version('dealcast')}\n"


@pytest.mark.parametrize("command", ["generate", "validate", "demo"])
def test_every_command_has_help_and_takes_params(command):
    result = invoke(command, "--help")
    assert result.exit_code == 0
    assert "--params" in result.output


def test_generate_then_validate(tmp_path, params_file):
    out, truth = tmp_path / "crm", tmp_path / "truth.parquet"
    result = invoke(
        "generate",
        "--out",
        str(out),
        "--truth",
        str(truth),
        "--deals",
        "300",
        "--params",
        str(params_file),
    )
    assert result.exit_code == 0, result.output
    assert (out / "deals.csv").exists() and truth.exists()
    report = tmp_path / "report.json"
    result = invoke("validate", str(out), "--report", str(report), "--params", str(params_file))
    assert result.exit_code == 0, result.output
    assert "data is usable" in result.output
    assert "funnel as of" in result.output and "open deals censored" in result.output
    assert "naive" in result.output  # the naive numbers beside the honest ones
    assert json.loads(report.read_text())["ok"] is True


def test_generate_is_byte_identical_for_the_same_seed(tmp_path, params_file):
    for name in ("a", "b"):
        args = ["generate", "--out", str(tmp_path / name), "--deals", "200", "--seed", "7"]
        assert invoke(*args, "--params", str(params_file)).exit_code == 0
    for file in (tmp_path / "a").iterdir():
        assert file.read_bytes() == (tmp_path / "b" / file.name).read_bytes(), file.name


def test_validate_bad_data_exits_2_and_names_the_problem(tmp_path, params_file):
    folder = tmp_path / "crm"
    folder.mkdir()
    (folder / "deals.csv").write_text(
        "deal_id,created_at,amount,closed_at,outcome\nd1,2024-01-05,100,,\nd2,2024-01-06,-5,,\n"
    )
    result = invoke("validate", str(folder), "--params", str(params_file))
    assert result.exit_code == 2
    assert "amount" in result.output and "3" in result.output
    assert "Traceback" not in result.output


def test_validate_json_output(tmp_path, params_file):
    result = invoke("validate", str(tmp_path / "missing"), "--json", "--params", str(params_file))
    assert result.exit_code == 2
    assert json.loads(result.output)["ok"] is False


def test_bad_params_file_is_a_clean_error(tmp_path):
    result = invoke("validate", str(tmp_path), "--params", str(tmp_path / "nope.yaml"))
    assert result.exit_code == 2
    assert "no such params file" in result.output


def test_bad_date_option_is_a_clean_error(tmp_path, params_file):
    result = invoke(
        "validate", str(tmp_path), "--as-of", "yesterday-ish", "--params", str(params_file)
    )
    assert result.exit_code == 2
    assert "is not a date" in result.output


def test_truth_inside_the_data_folder_is_refused(tmp_path, params_file):
    out = tmp_path / "crm"
    result = invoke(
        "generate",
        "--out",
        str(out),
        "--truth",
        str(out / "truth.parquet"),
        "--params",
        str(params_file),
    )
    assert result.exit_code == 2
    assert "inside the data folder" in result.output


def test_demo_runs_end_to_end_on_small_data(params_file, tmp_path, monkeypatch, mlflow_db):
    """The main job through both Prefect flows: registry, champion, export (one e2e test)."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_db(tmp_path))
    result = invoke("demo", "--params", str(params_file))
    assert result.exit_code == 0, result.output
    out = result.output
    for step in (*(f"[{i}/7]" for i in range(1, 8)), "demo finished"):
        assert step in out
    assert "funnel as of" in out and "win rate" in out
    assert "promoted to champion: first model" in out
    (export,) = (tmp_path / "data" / "exports").glob("prioritised_leads_*")
    exports = sorted(export.iterdir())
    assert [p.suffix for p in exports] == [".csv", ".parquet", ".xlsx"]
    leads = pd.read_csv(exports[0])
    assert leads["rank"].tolist() == list(range(1, len(leads) + 1))
    assert leads["p_win"].between(0, 1).all()
    assert (tmp_path / "data" / "reports" / "backtest" / "metrics.json").exists()
    # the forecast backtest is train's output; the daily flow fits nothing
    assert (tmp_path / "data" / "reports" / "backtest" / "forecast_backtest.json").exists()
    assert not list((tmp_path / "data" / "reports" / "forecast").glob("*backtest*"))
    assert "(no fit)" in out and "daily_score flow:" in out
    reports = list((tmp_path / "data" / "reports" / "funnel").glob("funnel_report_*.html"))
    assert len(reports) == 1 and f"funnel report: {reports[0]}" in out
    # every stage's output, as dvc.yaml names it (the demo is the DVC pipeline's run)
    for path in ("reports/validation.json", "features/features.parquet", "metrics.json"):
        assert (tmp_path / "data" / path).is_file(), path
    lineage = json.loads((tmp_path / "data" / "artifacts" / "trained_model.json").read_text())
    assert lineage["champion"] is True
    headline = json.loads((tmp_path / "data" / "metrics.json").read_text())
    assert 0.5 < headline["auc"] <= 1 and headline["forecast_wape"] is not None
    assert "not a DVC project" in out  # never `dvc commit` with other params than dvc.yaml's


def test_schedule_without_a_prefect_server_says_how_to_start_one(params_file, monkeypatch):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    result = invoke("schedule", "--params", str(params_file))
    assert result.exit_code == 2
    assert "make prefect-ui" in result.output and "PREFECT_API_URL" in result.output
