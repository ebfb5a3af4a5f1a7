"""``dvc.yaml`` against the code: templated from ``paths:``, each stage listing the code it
runs, a readable metrics file kept in git, and the headline numbers it holds."""

from __future__ import annotations

import ast
import json
import math
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from pipelines.headline import run_metrics
from pipelines.params import load_params

ROOT = Path(__file__).resolve().parents[2]
DVC = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))
STAGES = DVC["stages"]
#: The shell module(s) each stage's command runs (their imports count too).
STEP_MODULES = {
    "generate": ["steps"],
    "validate": ["steps"],
    "features": ["features_cmd"],
    "train": ["modelling", "tracking"],
    "score": ["scoring", "tracking_champion"],
    "forecast": ["forecasting", "tracking_champion"],
    "report": ["reporting"],
    "metrics": ["headline"],
}
#: Shell modules that cannot change what a step writes (parsing, atomic writes; io imports
#: steps only for its error type; progress prints step timings).
PLUMBING = {"params", "io", "progress"}
LIBRARIES = ("crm", "features", "models", "serving")


def _paths(stage: dict, *sections: str) -> list[str]:
    out = []
    for section in sections:
        for item in stage.get(section, []):
            out.append(next(iter(item)) if isinstance(item, dict) else item)
    return out


def test_data_paths_come_from_params_paths():
    keys = set(type(load_params(ROOT / "params.yaml").paths).model_fields)
    for name, stage in STAGES.items():
        for path in _paths(stage, "deps", "outs", "metrics", "plots"):
            if path.startswith("${"):
                assert re.match(r"^\$\{paths\.(\w+)\}", path)[1] in keys, (name, path)
            else:
                assert not path.startswith("data"), f"{name}: {path} is not from paths:"
                assert (ROOT / path).exists(), f"{name}: dependency {path} does not exist"


def test_every_stage_is_a_dealcast_command_with_a_step():
    assert set(STAGES) == set(STEP_MODULES)
    for name, stage in STAGES.items():
        assert stage["cmd"].split()[:2] == ["dealcast", name]


def _shell_imports(module: str) -> set[str]:
    """``module`` and every pipelines/ module it imports, transitively."""
    seen, todo = set(), [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in PLUMBING:
            continue
        tree = ast.parse((ROOT / "pipelines" / f"{name}.py").read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pipelines."):
                todo.append(node.module.split(".")[1])
    return seen


def _library_imports(modules: set[str]) -> set[str]:
    found = set()
    for name in modules:
        tree = ast.parse((ROOT / "pipelines" / f"{name}.py").read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            names += [a.name for a in node.names] if isinstance(node, ast.Import) else []
            found |= {n.split(".")[0] for n in names} & set(LIBRARIES)
    return found


@pytest.mark.parametrize("stage", sorted(STEP_MODULES))
def test_each_stage_depends_on_the_code_it_runs(stage):
    """No stage misses code that shapes its outputs (DVC would not rerun it)."""
    deps = set(_paths(STAGES[stage], "deps"))
    shell = set().union(*(_shell_imports(m) for m in STEP_MODULES[stage])) - PLUMBING
    missing = {f"pipelines/{m}.py" for m in shell} - deps
    # what the libraries import of each other counts too: a library dep is its folder
    missing |= {lib for lib in _library_imports(shell) if lib not in deps}
    assert not missing, f"stage {stage} runs code it does not depend on: {sorted(missing)}"


def test_no_stage_depends_on_an_output_it_does_not_read():
    """The lineage only: score and forecast read train's record (forecast its forecast
    backtest too), report and metrics the backtests."""
    outs = {p for stage in STAGES.values() for p in _paths(stage, "outs", "metrics")}
    reads = {
        "score": {"${paths.raw}", "${paths.artifacts}"},
        "forecast": {"${paths.raw}", "${paths.artifacts}", "${paths.reports}/backtest"},
        "report": {
            "${paths.raw}",
            "${paths.reports}/backtest",
            "${paths.reports}/forecast",
            "${paths.exports}",
        },  # fmt: skip
        "metrics": {"${paths.reports}/backtest"},
    }
    for name, stage in STAGES.items():
        upstream = {p for p in _paths(stage, "deps") if p in outs}
        assert upstream <= reads.get(name, {"${paths.raw}"}), (name, upstream)


def test_only_the_headline_numbers_are_dvc_metrics():
    metrics = {p for stage in STAGES.values() for p in _paths(stage, "metrics")}
    assert metrics == {"${paths.metrics}"}
    for stage in STAGES.values():
        for item in stage.get("metrics", []):
            assert next(iter(item.values())) == {"cache": False}  # kept in git


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_the_headline_metrics_file_is_not_git_ignored():
    path = load_params(ROOT / "params.yaml").paths.metrics
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    ignored = subprocess.run(["git", "check-ignore", "-q", str(path)], cwd=ROOT, check=False)
    assert ignored.returncode == 1, f"{path} is git-ignored: dvc exp show would print '!'"


def test_run_metrics_writes_a_small_strict_json(tmp_path):
    backtest = tmp_path / "backtest"  # train writes both backtests there
    backtest.mkdir()
    (backtest / "metrics.json").write_text(
        json.dumps({"close_probability": {"overall": {"p_win": {"roc_auc": 0.7}}}})
    )
    (backtest / "forecast_backtest.json").write_text(
        json.dumps({"methods": {"dealcast": {"wape": 0.3}}})
    )
    path, numbers = run_metrics(backtest=backtest, out=tmp_path / "m.json")
    written = json.loads(path.read_text())
    assert written == numbers and written["auc"] == 0.7 and written["forecast_wape"] == 0.3
    assert all(v is None or math.isfinite(v) for v in written.values())
    assert len(path.read_text()) < 300  # a handful of numbers: dvc exp show stays narrow
