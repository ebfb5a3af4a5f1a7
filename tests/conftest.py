"""Suite-wide settings: tool state in a temp folder, never the network."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
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
    _stop_prefect_servers()
    os.environ.clear()
    os.environ.update(saved)


def _stop_prefect_servers() -> None:
    """Stop the temporary Prefect server the flow tests started (one per session), while
    the log streams are still open: Prefect's own exit hook logs to closed ones."""
    import sys

    server = sys.modules.get("prefect.server.api.server")
    if server is None:  # no flow ran: Prefect's server was never imported
        return
    import inspect

    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker
    from prefect.utilities.asyncutils import run_coro_as_sync

    async def drain() -> None:  # as prefect_test_harness does before it stops its server
        for result in (APILogWorker.instance().drain(), EventsWorker.drain_all()):
            if inspect.isawaitable(result):
                await result

    run_coro_as_sync(drain())
    for instance in list(server.SubprocessASGIServer._instances.values()):
        if instance.running:
            instance.stop()


@pytest.fixture(scope="session")
def mlflow_db(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Path], str]:
    """``mlflow_db(folder)``: the tracking URI of a new, empty MLflow database in ``folder``.

    MLflow migrates a new SQLite database on first use (about 11 s, some 90 tables); one
    database is migrated once per session and copied, so every test still starts empty.
    """
    template = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"

    def new(folder: Path) -> str:
        if not template.exists():
            from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

            store = SqlAlchemyStore(f"sqlite:///{template}", str(template.parent / "mlruns"))
            store.engine.dispose()
        target = Path(folder) / "mlflow.db"
        shutil.copyfile(template, target)
        return f"sqlite:///{target}"

    return new


@pytest.fixture
def params_file(tmp_path: Path) -> Path:
    """A copy of the project's params.yaml with every path inside ``tmp_path``."""
    import yaml

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["paths"] = {key: str(tmp_path / value) for key, value in params["paths"].items()}
    params["generate"]["deals"] = 400
    params["forecast"]["backtest_refit_months"] = 18  # one forecast-backtest fit per train
    # quick models and a snapshot every other week: what these tests check does not need
    # the full settings, and the suite must stay well inside CI's time (bench_models and
    # `make demo` run the real ones)
    params["train"]["close"] |= {"n_estimators": 40, "learning_rate": 0.1}
    params["train"]["next_stage"] |= {"n_estimators": 25, "learning_rate": 0.15}
    params["features"]["freq"] = "2W-MON"
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path
