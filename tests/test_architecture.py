"""The house rules that keep the architecture honest, checked on the source itself."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Each package may import only the packages to its right.
LAYERS = ["pipelines", "serving", "models", "features", "crm"]
SHELL_ONLY = {"prefect", "mlflow", "dvc", "typer"}
WEB = {"fastapi", "uvicorn", "starlette"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", LAYERS)
def test_each_package_resolves_inside_the_repo(package):
    module = importlib.import_module(package)
    assert Path(module.__file__).resolve().parent == ROOT / package


@pytest.mark.parametrize("package", LAYERS[1:])
def test_imports_point_one_way(package):
    higher = set(LAYERS[: LAYERS.index(package)])
    for path in sorted((ROOT / package).rglob("*.py")):
        bad = _imports(path) & higher
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)} (a higher layer)"


@pytest.mark.parametrize("package", LAYERS[1:])
def test_only_the_shell_touches_tools_and_params(package):
    for path in sorted((ROOT / package).rglob("*.py")):
        allowed = WEB if path.name == "api.py" and package == "serving" else set()
        bad = _imports(path) & (SHELL_ONLY | WEB) - allowed
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}; only pipelines/ may"


@pytest.mark.parametrize("package", LAYERS[1:])
def test_libraries_do_not_print(package):
    for path in sorted((ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        calls = [
            n.lineno
            for n in ast.walk(tree)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "print"
        ]
        assert not calls, f"{path.relative_to(ROOT)} prints at lines {calls}"


def test_nothing_reads_the_shared_folder_at_run_time():
    for package in LAYERS:
        for path in (ROOT / package).rglob("*.py"):
            assert "../shared" not in path.read_text(encoding="utf-8"), path
