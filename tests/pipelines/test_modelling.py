"""``dealcast train`` / ``dealcast evaluate`` end to end on small generated data, with a
temporary MLflow store: files, columns, recomputable metrics, registry and champion gate."""

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
from models.metrics import binary_metrics
from pipelines.cli import app

ROOT = Path(__file__).resolve().parents[2]
CUTOFF = "2025-10-06"
COLUMNS = {
    "deal_id", "as_of", "p_win", "won", "stage", "next_stage_pred", "next_stage_true",
    "p_next_stage", "p_win_base_rate", "p_win_stage_rate", "p_win_logreg",
    "p_next_stage_transition_matrix",
}  # fmt: skip


def _params(folder: Path, *, stages: list[str] | None = None) -> Path:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["paths"] = {k: str(folder / v) for k, v in params["paths"].items()}
    params["train"]["close"] |= {"n_estimators": 40, "learning_rate": 0.1}
    params["train"]["next_stage"] |= {"n_estimators": 25, "learning_rate": 0.15}
    params["forecast"] |= {"draws": 2000, "backtest_months": 6, "backtest_refit_months": 6}
    params["features"]["freq"] = "2W-MON"  # half the snapshots: faster trains
    if stages:
        params["funnel"]["stages"] = stages
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def _crm(folder: Path, *, n_deals: int, stages=("lead", "qualified", "meeting", "proposal",
         "negotiation"), drop: tuple[str, ...] = ()) -> Path:  # fmt: skip
    funnel = Funnel(stages=tuple(stages), won_label="won", lost_label="lost")
    crm = generate_crm(
        n_deals=n_deals,
        seed=5,
        start=pd.Timestamp("2024-01-01", tz="UTC"),
        as_of=pd.Timestamp("2026-06-30", tz="UTC"),
        funnel=funnel,
        messy=False,
    )
    data = crm.data
    for table in drop:
        data = data.with_table(table, None)
    write_crm(data, folder / "raw", fmt="parquet")
    return folder / "raw"


@pytest.fixture
def project(tmp_path, monkeypatch, mlflow_db):
    """A working folder with its own MLflow store (runs, registry and artifacts)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_db(tmp_path))
    return tmp_path


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


def test_evaluate_writes_recomputable_outputs_and_only_logs(project):
    raw, params = _crm(project, n_deals=1500), _params(project)
    out = project / "eval"
    result = invoke("evaluate", "--data", raw, "--as-of", CUTOFF, "--out", out, "--params", params)
    assert result.exit_code == 0, result.output
    assert "close probability:" in result.output and "promot" not in result.output
    pred = pd.read_parquet(out / "test_predictions.parquet")
    assert set(pred.columns) >= COLUMNS
    assert not pred.duplicated(["deal_id", "as_of"]).any()
    assert (pred["as_of"] > pd.Timestamp(CUTOFF, tz="UTC")).all()
    metrics = json.loads((out / "metrics.json").read_text())
    known = pred[pred["won"].notna()]
    again = binary_metrics(known["won"].astype(bool), known["p_win"])
    for name, value in metrics["close_probability"]["overall"]["p_win"].items():
        assert value == pytest.approx(again[name]), name
    for png in ("reliability.png", "lift.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    drivers = pd.read_parquet(out / "drivers.parquet")
    assert {"deal_id", "direction", "phrase"} <= set(drivers.columns)
    assert (out / "model" / "models.joblib").exists()  # the backtest's model stays here
    assert not (project / "data").exists()  # nothing beside the report, nothing to serve

    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    assert client.search_registered_models() == []  # a past-cutoff model never serves
    (run,) = client.search_runs([client.get_experiment_by_name("dealcast").experiment_id])
    assert "close_probability.overall.p_win_stage_rate.log_loss" in run.data.metrics


def test_train_backtests_registers_and_gates_the_champion(project, monkeypatch):
    """Three trains in one project (each is the slow part): v1 serves, v2 is gated against
    it, then a `dvc exp run` trial the gate refuses (:func:`_refused_trial`)."""
    raw, params = _crm(project, n_deals=1500), _params(project)
    result = invoke("train", "--data", raw, "--params", params)
    assert result.exit_code == 0, result.output
    assert "backtest of these settings" in result.output
    assert "v1: promoted to champion: first model" in result.output
    # the same settings again (--force: else nothing changed, nothing is registered):
    # compared with the champion's backtest model on the same rows
    result = invoke("train", "--data", raw, "--params", params, "--force")
    assert result.exit_code == 0, result.output
    assert "v2:" in result.output and (
        "beats champion" in result.output or "not promoted: log loss" in result.output
    )
    _check_registry()
    lineage = json.loads((project / "data/artifacts/trained_model.json").read_text())
    assert lineage["models"]["dealcast-close-probability"]["version"] == "2"
    assert lineage["mlflow_experiment"] == "dealcast"
    assert not (project / "data/artifacts/models.joblib").exists()  # nothing unserved
    _refused_trial(project, raw, params, monkeypatch)


def _refused_trial(project: Path, raw: Path, params: Path, monkeypatch) -> None:
    """Under `dvc exp run` a train logs to its own MLflow experiment, and a pair the gate
    refuses never reaches the production registry; the lineage record says so."""
    from mlflow.tracking import MlflowClient

    settings = yaml.safe_load(params.read_text())
    settings["evaluate"]["promote_min_log_loss_gain"] = 1.0  # no challenger can pass
    params.write_text(yaml.safe_dump(settings, sort_keys=False))
    monkeypatch.setenv("DVC_EXP_NAME", "trial-one")
    result = invoke("train", "--data", raw, "--params", params)
    assert result.exit_code == 0, result.output
    assert "dealcast-close-probability not registered: not promoted" in result.output
    client = MlflowClient()
    versions = client.search_model_versions("name='dealcast-close-probability'")
    assert sorted(str(v.version) for v in versions) == ["1", "2"]
    trial = client.get_experiment_by_name("dealcast-dvc-exp")
    (run,) = client.search_runs([trial.experiment_id])
    assert run.data.tags["command"] == "train"
    lineage = json.loads((project / "data/artifacts/trained_model.json").read_text())
    close = lineage["models"]["dealcast-close-probability"]
    assert close["version"] is None and close["promoted"] is False
    assert lineage["champion"] is False and lineage["mlflow_experiment"] == "dealcast-dvc-exp"


def _check_registry() -> None:
    import mlflow
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    name = "dealcast-close-probability"
    challenger = client.get_model_version_by_alias(name, "challenger")
    assert str(challenger.version) == "2"
    champion = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    assert champion.metadata.signature is not None
    version = client.get_model_version(name, "2")
    assert version.tags["backtest_cutoff"] < version.tags["cutoff"]
    backtest_model = mlflow.pyfunc.load_model(version.tags["backtest_model_uri"])
    assert backtest_model.metadata.signature is not None
    run = client.get_run(version.run_id)
    assert run.data.tags["data_fingerprint"] and run.data.tags["git_commit"]
    assert "close_probability.overall.p_win_stage_rate.log_loss" in run.data.metrics
    assert run.data.params["train.horizon_days"] == "180"
    assert "promotion.dealcast-close-probability" in run.data.tags
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert artifacts == {"plots/reliability.png", "plots/lift.png"}


def test_train_at_a_date_knows_nothing_later(project):
    raw, params = _crm(project, n_deals=1500), _params(project)
    as_of = pd.Timestamp("2026-03-02", tz="UTC")
    result = invoke("train", "--data", raw, "--as-of", "2026-03-02", "--params", params)
    assert result.exit_code == 0, result.output
    assert "cutoff 2026-03-02" in result.output
    lineage = json.loads((project / "data/artifacts/trained_model.json").read_text())
    assert lineage["cutoff"].startswith("2026-03-02") and lineage["features"]
    assert "deal__owner_id" not in lineage["features"]
    # its backtest tested only snapshots up to as_of, labelled only with what was known then
    pred = pd.read_parquet(project / "data/reports/backtest/test_predictions.parquet")
    assert (pred["as_of"] <= as_of).all()
    known = pred["won"].notna()
    assert known.any()
    assert (pred.loc[known, "as_of"] + pd.Timedelta(days=180) <= as_of).all()


@pytest.mark.parametrize("variant", ["one_stage", "no_touchpoints_no_history"])
def test_small_crms_still_evaluate(project, variant):
    if variant == "one_stage":
        raw = _crm(project, n_deals=600, stages=("open",))
        params = _params(project, stages=["open"])
    else:
        raw = _crm(project, n_deals=600, drop=("touchpoints", "stage_history"))
        params = _params(project)
    out = project / "eval"
    args = ("--as-of", CUTOFF, "--out", out, "--no-track", "--params", params)
    result = invoke("evaluate", "--data", raw, *args)
    assert result.exit_code == 0, result.output
    pred = pd.read_parquet(out / "test_predictions.parquet")
    assert np.isfinite(pred["p_win"]).all()
    assert {"p_win_stage_rate", "p_win_base_rate", "p_win_logreg"} <= set(pred.columns)


def test_a_cutoff_without_history_exits_2(project):
    raw, params = _crm(project, n_deals=300), _params(project)
    result = invoke(
        "train", "--data", raw, "--as-of", "2024-02-01", "--no-track", "--params", params
    )
    assert result.exit_code == 2
    assert "no training snapshot" in result.output, result.output


def test_a_short_history_backtests_with_default_params_except_the_horizon(tmp_path):
    """Five months of 30-day deals (the ``short`` scenario): ``evaluate`` without --as-of
    picks its cutoff from the data and measures on test rows with a known outcome."""
    from pipelines.modelling import run_evaluate
    from pipelines.params import load_params

    p = load_params(ROOT / "params.yaml")
    crm = generate_crm(
        n_deals=700, seed=5, start=pd.Timestamp("2024-01-01", tz="UTC"),
        as_of=pd.Timestamp("2026-06-30", tz="UTC"), funnel=p.funnel.to_funnel(), messy=False,
        scenarios=("short",),
    )  # fmt: skip
    run = run_evaluate(
        folder=tmp_path, funnel=p.funnel.to_funnel(), features=p.features,
        train=p.train.model_copy(update={"horizon_days": 30}), seed=0, artifacts=tmp_path,
        as_of=None, test_days=p.evaluate.test_days, out=None, ece_bins=10, data=crm.data,
    )  # fmt: skip
    known = run.metrics["test_window"]["rows_with_known_outcome"]
    assert known >= 100, run.metrics["test_window"]
    served = run.metrics["close_probability"]["overall"]["p_win"]
    p_win = run.predictions["p_win"]
    assert p_win.min() >= 0.005 and p_win.max() <= 0.995
    base = run.metrics["close_probability"]["overall"]["p_win_base_rate"]
    assert served["log_loss"] < base["log_loss"]
