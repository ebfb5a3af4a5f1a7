"""``train`` is crash-safe and concurrent-safe (issue 16, item 5): a project lock, no shared
temp file, runs left RUNNING by a killed process marked FAILED at the next start."""

from __future__ import annotations

import subprocess
import sys
import threading
from types import SimpleNamespace

import pytest
from gate_fixtures import invoke, params_file

from pipelines.lock import LockBusyError, project_lock


def test_a_second_train_exits_2_naming_the_running_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    params = params_file(tmp_path)
    with project_lock(tmp_path, "train"):
        result = invoke("train", "--data", tmp_path / "nowhere", "--params", params)
    assert result.exit_code == 2
    assert "another dealcast train is running in this project (pid" in result.output
    with project_lock(tmp_path, "train"):  # released: free again
        pass


def test_the_lock_is_released_when_its_holder_dies(tmp_path):
    code = (
        "import os, sys; from pathlib import Path; from pipelines.lock import project_lock\n"
        f"with project_lock(Path({str(tmp_path)!r}), 'train'):\n    os._exit(9)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=False, timeout=60)
    with project_lock(tmp_path, "train", wait_seconds=0):
        pass


def test_a_held_lock_waits_then_gives_up(tmp_path):
    with (
        project_lock(tmp_path, "train"),
        pytest.raises(LockBusyError, match="pid"),
        project_lock(tmp_path, "train", wait_seconds=0.3),
    ):
        pass


def test_concurrent_model_writes_do_not_share_a_temp_file(tmp_path):
    from pipelines.modelling_artifacts import write_models

    matrix = SimpleNamespace(columns_=["deal__amount"])
    models = SimpleNamespace(close=SimpleNamespace(matrix_=matrix), payload=b"x" * 2_000_000)

    errors: list[BaseException] = []

    def write():
        try:
            for _ in range(20):
                write_models(tmp_path, models)
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=write) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert (tmp_path / "models.joblib").is_file()
    assert not list(tmp_path.glob("*.tmp"))


def test_runs_left_running_by_a_dead_process_are_marked_failed(tmp_path, monkeypatch, mlflow_db):
    from mlflow.tracking import MlflowClient

    from pipelines.tracking import process_tags, recover

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_db(tmp_path))
    client = MlflowClient()
    experiment = client.create_experiment("dealcast")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    tags = process_tags()
    crashed = client.create_run(experiment, tags=tags | {"dealcast.pid": str(dead.pid)})
    alive = client.create_run(experiment, tags=tags)  # this process: still running
    legacy = client.create_run(experiment, tags={"command": "train"})  # before the pid tag
    foreign = client.create_run(experiment, tags={})  # someone's notebook: not ours to judge
    notes = recover(experiment="dealcast", close_model_name="c", next_stage_model_name="n")
    status = {r: client.get_run(r.info.run_id).info.status for r in (crashed, alive, legacy,
              foreign)}  # fmt: skip
    assert status[crashed] == "FAILED" and status[legacy] == "FAILED"
    assert status[alive] == "RUNNING" and status[foreign] == "RUNNING"
    assert len(notes) == 2 and all("marked interrupted MLflow run" in n for n in notes)
