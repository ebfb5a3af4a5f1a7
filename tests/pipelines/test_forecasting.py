"""The revenue forecast end to end on small generated data after one fast ``dealcast train``,
with a temporary MLflow store: train writes the forecast backtest (rows per period, origin
and method; metrics; the data fingerprint); ``dealcast forecast`` and the daily flow fit
nothing, show that backtest only for the CRM it was computed on, and the flow loads the CRM
once."""

from __future__ import annotations

import json
import shutil
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


@pytest.fixture(scope="module")
def project(tmp_path_factory, mlflow_db):
    """A working folder with its own MLflow store, a small CRM, fast settings, trained once
    (before training, ``forecast`` has no champion: exit 2); (folder, train's output)."""
    tmp_path = tmp_path_factory.mktemp("forecast")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp_path)
        mp.setenv("MLFLOW_TRACKING_URI", mlflow_db(tmp_path))
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
        raw, params_file = tmp_path / "raw", tmp_path / "params.yaml"
        assert invoke("forecast", "--data", raw, "--params", params_file).exit_code == 2
        result = invoke("train", "--data", raw, "--params", params_file)
        assert result.exit_code == 0, result.output
        yield tmp_path, result.output


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


def _backtest_folder(project: Path) -> Path:
    params = yaml.safe_load((project / "params.yaml").read_text())
    return Path(params["paths"]["reports"]) / "backtest"


@pytest.fixture
def no_fit(monkeypatch):
    """Every way to fit a model raises: what runs with it fits nothing."""

    def refuse(*args, **kwargs):
        raise AssertionError("a model was fitted")

    import lightgbm

    import models.hazard
    import pipelines.modelling

    monkeypatch.setattr(pipelines.modelling, "fit_close_at", refuse)
    monkeypatch.setattr(pipelines.modelling, "run_forecast_backtest", refuse)
    monkeypatch.setattr(models.hazard.HazardCloseModel, "fit", refuse)
    monkeypatch.setattr(lightgbm, "train", refuse)
    monkeypatch.setattr(lightgbm.LGBMClassifier, "fit", refuse)


def test_train_writes_the_forecast_backtest_of_its_data(project):
    folder, output = project
    assert "revenue forecast:" in output and "backtest on" in output
    out = _backtest_folder(folder)
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
    deals = pd.read_parquet(folder / "raw" / "deals.parquet")
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
    # computed on this CRM: the fingerprint train recorded for its model
    lineage = json.loads(
        (Path(yaml.safe_load((folder / "params.yaml").read_text())["paths"]["artifacts"])
         / "trained_model.json").read_text()
    )  # fmt: skip
    assert metrics["data_fingerprint"] == lineage["data_fingerprint"]
    assert set(backtest["data_fingerprint"]) == {lineage["data_fingerprint"]}

    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    (run,) = client.search_runs(
        [client.get_experiment_by_name("dealcast").experiment_id],
        filter_string="tags.command = 'train'",
    )
    wape = run.data.metrics["forecast_backtest.dealcast.wape"]
    assert wape == pytest.approx(metrics["methods"]["dealcast"]["wape"])
    assert "forecast_backtest.dealcast.by_horizon.quarter_at_start.wape" in run.data.metrics
    assert run.data.tags["forecast_backtest.data_fingerprint"] == metrics["data_fingerprint"]


def test_forecast_fits_nothing_and_shows_train_s_backtest(project, no_fit):
    folder, _ = project
    raw, params, out = folder / "raw", folder / "params.yaml", folder / "fc"
    result = invoke("forecast", "--data", raw, "--out", out, "--params", params)
    assert result.exit_code == 0, result.output
    assert "backtest on" in result.output and "mlflow run" in result.output
    assert "no backtest shown" not in result.output

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
    # the forecast's own files only: the backtest is train's
    assert sorted(p.suffix for p in out.iterdir()) == [".csv", ".png", ".xlsx"]

    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    runs = client.search_runs(
        [client.get_experiment_by_name("dealcast").experiment_id],
        filter_string="tags.command = 'forecast'",
    )
    assert len(runs) == 1
    stored = json.loads((_backtest_folder(folder) / "forecast_backtest.json").read_text())
    logged = runs[0].data.metrics["forecast.dealcast.wape"]
    assert logged == pytest.approx(stored["methods"]["dealcast"]["wape"])


def test_forecast_never_shows_another_crm_s_backtest(project, no_fit, tmp_path):
    """A backtest of another data fingerprint, or none: the forecast is still written and a
    message says why no backtest is shown (never a silent reuse, never a fit)."""
    folder, _ = project
    params = yaml.safe_load((folder / "params.yaml").read_text())
    params["paths"]["reports"] = str(tmp_path / "reports")  # the backtest folder is in here
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    other = tmp_path / "reports" / "backtest"
    shutil.copytree(_backtest_folder(folder), other)
    metrics = json.loads((other / "forecast_backtest.json").read_text())
    ours = metrics["data_fingerprint"]
    (other / "forecast_backtest.json").write_text(
        json.dumps(metrics | {"data_fingerprint": "0123456789abcdef"})
    )
    for expected in ("computed on another CRM or extract", "none in"):
        out = tmp_path / f"fc-{len(expected)}"
        result = invoke("forecast", "--data", folder / "raw", "--out", out,
                        "--params", params_file, "--no-track")  # fmt: skip
        assert result.exit_code == 0, result.output
        assert "no backtest shown" in result.output and expected in result.output
        assert "backtest on" not in result.output
        assert len(list(out.glob("forecast_*.csv"))) == 1
        if "another" in expected:
            assert f"this CRM {ours}" in result.output
            shutil.rmtree(other)  # next: no backtest at all


def test_daily_flow_loads_the_crm_once_and_fits_nothing(project, no_fit, monkeypatch):
    """Through Prefect's temporary local server, as `dealcast demo` runs it (the suite's
    PREFECT_HOME; a fresh server database costs 25-30 s, so the flow tests share one)."""
    import pipelines.steps
    from pipelines.flows import daily_score_flow

    folder, _ = project
    loads = []
    load_crm = pipelines.steps.load_crm

    def counted(*args, **kwargs):
        loads.append(args)
        return load_crm(*args, **kwargs)

    monkeypatch.setattr(pipelines.steps, "load_crm", counted)
    scored = daily_score_flow(
        params_file=str(folder / "params.yaml"), data=str(folder / "raw"),
        out=str(folder / "daily-exports"),
    )  # fmt: skip
    assert len(loads) == 1
    assert scored.forecast.metrics["methods"]  # train's backtest of this CRM, shown
    assert scored.forecast.data_fingerprint == scored.forecast.metrics["data_fingerprint"]
    assert {"leads csv", "forecast forecast", "forecast fan_chart"} <= set(scored.files)
