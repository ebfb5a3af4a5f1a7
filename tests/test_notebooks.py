"""The notebooks run top to bottom on small data (as scripts: jupytext percent format)."""

from __future__ import annotations

import runpy
from pathlib import Path

import matplotlib
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.py"))


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(notebook, params_file, monkeypatch, tmp_path):
    matplotlib.use("Agg")
    monkeypatch.setenv("DEALCAST_PARAMS", str(params_file))
    monkeypatch.setenv("DEALCAST_NOTEBOOK_DATA", str(tmp_path / "no-such-folder"))
    monkeypatch.setenv("DEALCAST_NOTEBOOK_DEALS", "500")
    monkeypatch.chdir(tmp_path)
    runpy.run_path(str(notebook), run_name="__notebook__")
    import matplotlib.pyplot as plt

    assert plt.get_fignums(), "the notebook draws its charts"
    plt.close("all")


def test_notebooks_are_valid_jupytext():
    import jupytext

    for notebook in NOTEBOOKS:
        nb = jupytext.read(notebook)
        assert any(cell.cell_type == "markdown" for cell in nb.cells), notebook.name
        assert any(cell.cell_type == "code" for cell in nb.cells), notebook.name
