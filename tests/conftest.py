"""Suite-wide settings: tool state in a temp folder, never the network."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipelines.env import tool_environment

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="session")
def _offline_tools(tmp_path_factory: pytest.TempPathFactory):
    """Prefect/MLflow/DVC state for the whole run lives in a throwaway folder."""
    home = tmp_path_factory.mktemp("tools")
    saved = dict(os.environ)
    os.environ.update(tool_environment(home))
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def params_file(tmp_path: Path) -> Path:
    """A copy of the project's params.yaml with every path inside ``tmp_path``."""
    import yaml

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["paths"] = {key: str(tmp_path / value) for key, value in params["paths"].items()}
    params["generate"]["deals"] = 400
    params["forecast"]["backtest_refit_months"] = 18  # one forecast-backtest fit per train
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path
