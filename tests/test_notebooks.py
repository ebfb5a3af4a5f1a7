"""The notebooks run top to bottom on small data (as scripts: jupytext percent format)."""

from __future__ import annotations

import runpy
from pathlib import Path

import matplotlib
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.py"))


def run_notebook(name: str) -> None:
    import matplotlib.pyplot as plt

    matplotlib.use("Agg")
    plt.close("all")
    runpy.run_path(str(ROOT / "notebooks" / name), run_name="__notebook__")
    assert plt.get_fignums(), "the notebook draws its charts"
    plt.close("all")


def test_funnel_exploration_runs(params_file, monkeypatch, tmp_path):
    monkeypatch.setenv("DEALCAST_PARAMS", str(params_file))
    monkeypatch.setenv("DEALCAST_NOTEBOOK_DATA", str(tmp_path / "no-such-folder"))
    monkeypatch.setenv("DEALCAST_NOTEBOOK_DEALS", "500")
    monkeypatch.chdir(tmp_path)
    run_notebook("01-funnel-exploration.py")


def test_model_review_runs_on_a_trained_champion(params_file, monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from pipelines.cli import app

    params = yaml.safe_load(params_file.read_text())
    params["generate"]["deals"] = 1200
    params["train"]["close"] |= {"n_estimators": 40, "learning_rate": 0.1}
    params["train"]["next_stage"] |= {"n_estimators": 25, "learning_rate": 0.15}
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("DEALCAST_PARAMS", str(params_file))
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    for args in (["generate"], ["train"]):
        result = runner.invoke(app, [*args, "--params", str(params_file)])
        assert result.exit_code == 0, result.output
    run_notebook("02-model-review.py")


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_are_valid_jupytext(notebook):
    import jupytext

    nb = jupytext.read(notebook)
    assert any(cell.cell_type == "markdown" for cell in nb.cells), notebook.name
    assert any(cell.cell_type == "code" for cell in nb.cells), notebook.name
