"""``dealcast report`` on small generated data without any model: the page is written,
names what to run, picks the latest export, survives a broken optional file, and an
unusable CRM exits 2."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from crm.schemas import Funnel
from crm.synthetic import generate_crm
from crm.write import write_crm
from pipelines.cli import app
from pipelines.reporting import fan_chart_file, latest_dated

AS_OF = "2026-03-02"


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A params file with every path in a temp folder and a small CRM in its raw folder."""
    folder = tmp_path_factory.mktemp("reporting")
    params = yaml.safe_load((Path(__file__).resolve().parents[2] / "params.yaml").read_text())
    params["paths"] = {k: str(folder / v) for k, v in params["paths"].items()}
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    funnel = Funnel(stages=tuple(params["funnel"]["stages"]), won_label="won", lost_label="lost")
    crm = generate_crm(
        n_deals=300, seed=3, start=pd.Timestamp("2025-01-01", tz="UTC"),
        as_of=pd.Timestamp("2026-06-30", tz="UTC"), funnel=funnel, messy=False,
    )  # fmt: skip
    write_crm(crm.data, Path(params["paths"]["raw"]), fmt="parquet")
    return folder, params


def _report(folder: Path, *extra):
    return invoke("report", "--params", folder / "params.yaml", *extra)


def test_report_without_a_model_is_written_and_names_what_to_run(project):
    folder, params = project
    result = _report(folder, "--as-of", AS_OF)
    assert result.exit_code == 0, result.output
    path = Path(params["paths"]["reports"]) / "funnel" / f"funnel_report_{AS_OF}.html"
    assert f"funnel report as of {AS_OF} 00:00:00+00:00: {path}" in result.output
    page = path.read_text(encoding="utf-8")
    assert "Funnel report, data as of 2026-03-02 00:00 UTC" in page
    assert "run `dealcast train`" in page and "run `dealcast score --as-of" in page
    assert "No forecast yet" in page
    assert "https://" not in page and "http://" not in page


def test_report_defaults_to_the_data_end_and_reads_the_outputs(project, tmp_path):
    folder, params = project
    reports, exports = Path(params["paths"]["reports"]), Path(params["paths"]["exports"])
    (reports / "backtest").mkdir(parents=True, exist_ok=True)
    (reports / "backtest" / "metrics.json").write_text("{not json")
    exports.mkdir(parents=True, exist_ok=True)
    leads = pd.DataFrame({"rank": [1], "deal_id": ["D-LATEST"], "p_win": [0.5]})
    leads.to_parquet(exports / "prioritised_leads_2026-06-01.parquet")
    leads.assign(deal_id="D-OLD").to_parquet(exports / "prioritised_leads_2026-01-01.parquet")
    leads.assign(deal_id="D-OWNER").to_parquet(
        exports / "prioritised_leads_2026-06-02_owner-U1.parquet"
    )
    result = _report(folder, "--out", tmp_path)
    assert result.exit_code == 0, result.output
    assert "left out the backtest metrics: cannot read" in result.output
    [page] = list(tmp_path.glob("funnel_report_2026-06-*.html"))
    text = page.read_text(encoding="utf-8")
    assert "D-LATEST" in text and "D-OLD" not in text and "D-OWNER" not in text
    assert "run `dealcast train`" in text  # the unreadable metrics are left out


def test_another_crm_s_forecast_backtest_is_left_out_with_a_note(project, tmp_path):
    folder, params = project
    backtest = Path(params["paths"]["reports"]) / "backtest"
    backtest.mkdir(parents=True, exist_ok=True)
    rows = pd.DataFrame(
        {"period": ["2026-01"], "kind": ["month"], "origin_at": ["start"],
         "method": ["dealcast"], "forecast": [1.0], "p10": [0.5], "p50": [1.0], "p90": [1.5],
         "actual": [1.0], "data_fingerprint": ["0123456789abcdef"]}
    )  # fmt: skip
    rows.to_parquet(backtest / "forecast_backtest.parquet")
    try:
        result = _report(folder, "--out", tmp_path)
    finally:
        (backtest / "forecast_backtest.parquet").unlink()
    assert result.exit_code == 0, result.output
    assert "left out the forecast backtest" in result.output
    assert "run `dealcast train` on this CRM" in result.output


def test_latest_dated_and_fan_chart_pick_by_date(tmp_path):
    for name in ("forecast_2026-01-31.csv", "forecast_2026-02-28.csv", "forecast_2026-04-30.csv",
                 "forecast_backtest.csv", "forecast_fan_2026-02-28.png",
                 "forecast_fan_2026-04-30.png"):  # fmt: skip
        (tmp_path / name).write_text("x")
    as_of = pd.Timestamp("2026-03-31", tz="UTC")
    chosen = latest_dated(tmp_path, "forecast", ".csv", as_of)
    assert chosen == tmp_path / "forecast_2026-02-28.csv"
    assert fan_chart_file(tmp_path, chosen) == tmp_path / "forecast_fan_2026-02-28.png"
    assert latest_dated(tmp_path / "absent", "forecast", ".csv", as_of) is None
    # a back-dated report before any forecast shows no fan chart of a later date
    early = latest_dated(tmp_path, "forecast", ".csv", pd.Timestamp("2025-12-31", tz="UTC"))
    assert early is None and fan_chart_file(tmp_path, early) is None
    (tmp_path / "forecast_fan_2026-01-31.png").unlink(missing_ok=True)
    january = tmp_path / "forecast_2026-01-31.csv"
    assert fan_chart_file(tmp_path, january) is None  # its own fan is missing: none


def test_unusable_data_exits_2(project, tmp_path):
    folder, _ = project
    result = _report(folder, "--data", tmp_path)
    assert result.exit_code == 2
    assert "not usable" in result.output
