"""One far-future timestamp cannot move the data's end (issue 16, item 3)."""

from __future__ import annotations

import logging

import pandas as pd
import pytest
from gate_fixtures import FUNNEL, generated, invoke, params_file, write

from features.snapshots import TooManySnapshotsError
from pipelines.steps import clock_of, load_usable

pytestmark = pytest.mark.slow


def _with_touch_at(data, when: str):
    touches = data.touchpoints
    late = touches.iloc[[0]].copy()
    late["touchpoint_id"] = "FUTURE-1"
    late["occurred_at"] = pd.Timestamp(when, tz="UTC")
    return data.with_table("touchpoints", pd.concat([touches, late], ignore_index=True))


@pytest.fixture(scope="module")
def crm_9999(tmp_path_factory):
    folder = tmp_path_factory.mktemp("far")
    return write(_with_touch_at(generated(300), "9999-12-31"), folder / "raw")


def test_the_loading_step_excludes_and_counts_rows_after_the_clock(crm_9999, caplog):
    clock = clock_of(pd.Timestamp("2026-07-01").date())
    with caplog.at_level(logging.WARNING):
        data = load_usable(crm_9999, funnel=FUNNEL, data_end=None, clock=clock)
    assert "FUTURE-1" not in set(data.touchpoints["touchpoint_id"])
    assert data.touchpoints["occurred_at"].max() <= clock
    assert "touchpoints.occurred_at: 1 row(s) after" in caplog.text
    assert "9999-12-31" in caplog.text


def test_a_far_future_touchpoint_does_not_move_the_export_date(tmp_path, monkeypatch, mlflow_db):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_db(tmp_path))
    params = params_file(tmp_path)
    data = generated(600)
    clean = write(data, tmp_path / "clean")
    assert invoke("train", "--data", clean, "--params", params).exit_code == 0
    raw = write(_with_touch_at(data, "2099-01-01"), tmp_path / "raw")
    result = invoke("score", "--data", raw, "--params", params)
    assert result.exit_code == 0, result.output
    exports = tmp_path / "data/exports"
    written = [p.relative_to(exports) for p in exports.rglob("*") if p.is_file()]
    assert written and not [p for p in written if "2099" in str(p)], written
    parquet = next(p for p in written if p.name == "prioritised_leads_2026-06-29.parquet")
    leads = pd.read_parquet(exports / parquet)
    assert leads["p_win"].between(0.01, 0.99).mean() > 0.5  # not "every p_win ~ 0"
    forecast = invoke("forecast", "--data", raw, "--no-track", "--params", params)
    assert forecast.exit_code == 0, forecast.output
    # the only 2099 a user may read is the warning that names the excluded row
    shown = [line for line in forecast.output.splitlines() if "FUTURE-1" not in line]
    assert not [line for line in shown if "2099" in line.replace(str(tmp_path), "")], shown
    assert "forecast_2026-06-29.csv" in forecast.output
    # training on it: the same past, the same data end, judged on its backtest as usual
    again = invoke("train", "--data", raw, "--params", params, "--force")  # the same data
    assert again.exit_code == 0, again.output
    assert "data_end 2026-06-29" in again.output and "data_end 2099" not in again.output
    assert "dealcast-close-probability v2:" in again.output and "rewritten" not in again.output


def test_9999_makes_features_warn_not_explode(crm_9999, tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    params = params_file(tmp_path)
    with caplog.at_level(logging.WARNING):
        result = invoke("features", "--data", crm_9999, "--params", params)
    assert result.exit_code == 0, result.output
    assert "data_end 2026-06-2" in result.output
    assert "touchpoints.occurred_at: 1 row(s) after" in caplog.text


def test_a_far_away_start_is_a_clear_error_not_a_memory_blow_up(crm_9999, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    params = params_file(tmp_path, start="1800-01-01", freq="D")
    result = invoke("features", "--data", crm_9999, "--params", params)
    assert result.exit_code == 2
    assert "snapshots every 'D' from 1800-01-01" in result.output
    assert TooManySnapshotsError.__name__ not in result.output  # a message, not a traceback


def test_a_data_end_after_the_clock_is_refused(crm_9999, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    params = params_file(tmp_path, data_end="2030-01-01")
    result = invoke("features", "--data", crm_9999, "--params", params)
    assert result.exit_code == 2
    assert "features.data_end 2030-01-01" in result.output and "after the clock" in result.output
