"""The notebooks run top to bottom on small data, as a user opens them: converted from their
jupytext percent format to ``.ipynb`` and executed cell by cell by a Jupyter kernel started
in ``notebooks/`` (so the notebook must find ``params.yaml`` itself), charts shown inline."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.py"))


def run_notebook(name: str, *, charts: int) -> None:
    """Execute ``notebooks/<name>`` with the ``python3`` kernel; every cell must run and at
    least ``charts`` figures must be shown inline as PNG."""
    import jupytext
    from nbclient import NotebookClient

    nb = jupytext.read(ROOT / "notebooks" / name)
    client = NotebookClient(
        nb, kernel_name="python3", timeout=600,
        resources={"metadata": {"path": str(ROOT / "notebooks")}},
    )  # fmt: skip
    client.execute()
    shown = [
        o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])
        if "image/png" in o.get("data", {})
    ]  # fmt: skip
    assert len(shown) >= charts, f"{name}: {len(shown)} charts shown inline"


def test_funnel_exploration_runs_from_the_notebooks_folder(monkeypatch, tmp_path):
    """No DEALCAST_PARAMS: the kernel starts in notebooks/ and the notebook finds the
    project's params.yaml one folder up, as when a user opens it in Jupyter."""
    monkeypatch.delenv("DEALCAST_PARAMS", raising=False)
    monkeypatch.setenv("DEALCAST_NOTEBOOK_DATA", str(tmp_path / "no-such-folder"))
    monkeypatch.setenv("DEALCAST_NOTEBOOK_DEALS", "500")
    run_notebook("01-funnel-exploration.py", charts=5)


def test_model_review_runs_on_a_trained_champion(params_file, monkeypatch, tmp_path, mlflow_db):
    from typer.testing import CliRunner

    from pipelines.cli import app

    params = yaml.safe_load(params_file.read_text())
    params["generate"]["deals"] = 1200
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_db(tmp_path))
    monkeypatch.setenv("DEALCAST_PARAMS", str(params_file))
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    for args in (["generate"], ["train"]):
        result = runner.invoke(app, [*args, "--params", str(params_file)])
        assert result.exit_code == 0, result.output
    run_notebook("02-model-review.py", charts=2)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_are_valid_jupytext(notebook):
    import jupytext

    nb = jupytext.read(notebook)
    assert any(cell.cell_type == "markdown" for cell in nb.cells), notebook.name
    assert any(cell.cell_type == "code" for cell in nb.cells), notebook.name
