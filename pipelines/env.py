"""Keep every tool offline, quiet and inside the project folder.

Called from the CLI callback (never at import): Prefect's home, the MLflow database and
DVC's analytics are pinned before any of those libraries is imported. Values the user has
already set in the environment win.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from pathlib import Path

from pipelines.catalog import MLFLOW_DB, PREFECT_HOME


def tool_environment(project: Path) -> dict[str, str]:
    """The environment variables dealcast sets for a project rooted at ``project``."""
    project = project.resolve()
    return {
        "PREFECT_HOME": str(project / PREFECT_HOME),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
        "PREFECT_UI_ENABLED": "false",
        # the temporary per-run server takes 25-30 s on its first start (it creates its
        # database), more on a busy box or a fresh install: Prefect's default 20 s is short
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "150",
        "MLFLOW_TRACKING_URI": f"sqlite:///{project / MLFLOW_DB}",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MLFLOW_LOGGING_LEVEL": "WARNING",
        "DVC_NO_ANALYTICS": "1",
        "DO_NOT_TRACK": "1",
    }


def configure(project: Path, *, verbose: bool) -> None:
    """Set the tool environment (without overriding the user's) and logging."""
    for key, value in tool_environment(project).items():
        os.environ.setdefault(key, value)
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for handler in list(root.handlers):  # e.g. left by an earlier run in this process
        if getattr(getattr(handler, "stream", None), "closed", False):
            root.removeHandler(handler)
    if not any(isinstance(h, _CurrentStderr) for h in root.handlers):
        handler = _CurrentStderr()
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
        )
        root.addHandler(handler)
    for noisy in ("alembic", "urllib3", "httpx", "matplotlib", "numexpr", "mlflow"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # dealcast logs models it wrote itself; MLflow's pickling caution is about loading
    # models from untrusted sources, which the registry here never does.
    logging.getLogger("mlflow.pyfunc").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="pandera")


class _CurrentStderr(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the moment of each record, so a command run
    twice in one process (tests, notebooks, a schedule) never logs into a closed stream."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # the handler always follows sys.stderr
        pass
