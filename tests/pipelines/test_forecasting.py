"""``dealcast forecast`` end to end on small generated data after a fast ``dealcast train``,
with a temporary MLflow store: files, columns, backtest rows per month and method."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from crm.schemas import Funnel
from crm.synthetic import generate_crm
from crm.write import write_crm
from pipelines.cli import app

ROOT = Path(__file__).resolve().parents[2]

BACKTEST_COLUMNS = {"period", "method", "forecast", "p10", "p50", "p90", "actual"}
METHODS = {"dealcast", "stage_weighted", "rep_close_dates"}


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A working folder with its own MLflow store, a small CRM and fast settings."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["paths"] = {k: str(tmp_path / v) for k, v in params["paths"].items()}
    params["train"]["close"] |= {"n_estimators": 40, "learning_rate": 0.1}
    params["train"]["next_stage"] |= {"n_estimators": 25, "learning_rate": 0.15}
    params["forecast"] |= {"draws": 2000, "months": 3, "quarters": 2, "backtest_months": 6}
    params["features"]["freq"] = "2W-MON"  # half the snapshots: a faster train
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    crm = generate_crm(
        n_deals=1500, seed=5, start=pd.Timestamp("2024-01-01", tz="UTC"),
        as_of=pd.Timestamp("2026-06-30", tz="UTC"), messy=False,
        funnel=Funnel(stages=("lead", "qualified", "meeting", "proposal", "negotiation"),
                      won_label="won", lost_label="lost"),
    )  # fmt: skip
    write_crm(crm.data, tmp_path / "raw", fmt="parquet")
    return tmp_path


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


def test_forecast_end_to_end(project):
    raw, params = project / "raw", project / "params.yaml"
    out = project / "fc"
    assert invoke("forecast", "--data", raw, "--params", params).exit_code == 2  # no champion
    result = invoke("train", "--data", raw, "--params", params)
    assert result.exit_code == 0, result.output
    result = invoke("forecast", "--data", raw, "--out", out, "--params", params)
    assert result.exit_code == 0, result.output
    assert "backtest on" in result.output and "mlflow run" in result.output

    (csv,) = out.glob("forecast_*.csv")
    table = pd.read_csv(csv)
    assert list(table["kind"]) == ["month"] * 3 + ["quarter"] * 2
    assert table["period"].tolist()[:3] == ["2026-06", "2026-07", "2026-08"]
    parts = table["already_won"] + table["open_expected"] + table["new_expected"]
    assert np.allclose(parts, table["forecast"])
    assert (table["p10"] <= table["p50"]).all() and (table["p50"] <= table["p90"]).all()
    assert (table["p10"] >= table["already_won"]).all()
    (png,) = out.glob("forecast_fan_*.png")
    assert png.read_bytes()[:4] == b"\x89PNG"

    backtest = pd.read_parquet(out / "forecast_backtest.parquet")
    assert set(backtest.columns) >= BACKTEST_COLUMNS
    periods = backtest["period"].unique()
    assert len(periods) >= 4
    origins = backtest[["period", "origin_at"]].drop_duplicates()
    assert len(backtest) == 3 * len(origins)  # each method once per (period, origin)
    assert set(backtest.groupby(["period", "origin_at"])["method"].agg(frozenset)) == {
        frozenset(METHODS)
    }
    quarters = backtest[backtest["kind"] == "quarter"]
    assert set(quarters["origin_at"]) == {"start", "mid"}
    mid = quarters[quarters["origin_at"] == "mid"]
    assert (mid["origin"] > pd.to_datetime(mid["period"].str[:4] + "-01-01", utc=True)).all()
    rep = backtest[backtest["method"] == "rep_close_dates"]
    assert (rep["p10"] == rep["forecast"]).all() and (rep["p90"] == rep["forecast"]).all()
    # the actual is the same for every method and recomputable from the deals
    deals = pd.read_parquet(raw / "deals.parquet")
    first = backtest.iloc[0]
    start = pd.Timestamp(first["period"] + "-01", tz="UTC")
    won = deals[(deals["outcome"] == "won") & (deals["closed_at"] >= start)
                & (deals["closed_at"] < start + pd.DateOffset(months=1))]  # fmt: skip
    assert first["actual"] == pytest.approx(won["amount"].sum())

    metrics = json.loads((out / "forecast_backtest.json").read_text())
    assert set(metrics["methods"]) == METHODS
    for name, m in metrics["methods"].items():
        rows = backtest[(backtest["method"] == name) & (backtest["kind"] == "month")]
        inside = ((rows["p10"] <= rows["actual"]) & (rows["actual"] <= rows["p90"])).mean()
        assert m["coverage_p10_p90"] == pytest.approx(inside)
        err = (rows["forecast"] - rows["actual"]).sum() / rows["actual"].sum()
        assert m["bias"] == pytest.approx(err)

    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    runs = client.search_runs(
        [client.get_experiment_by_name("dealcast").experiment_id],
        filter_string="tags.command = 'forecast'",
    )
    assert len(runs) == 1
    assert "forecast.dealcast.wape" in runs[0].data.metrics
