"""The house rules that keep the architecture honest, checked on the source itself."""

from __future__ import annotations

import ast
import importlib
import re
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


# --- one catalogue of files, no import circles, disk I/O only in crm/ and pipelines/ ---

_SUFFIXES = "json|joblib|parquet|csv|xlsx|png|html|yaml|yml|db|lock|pkl|txt|md|log"
_FILE_NAME = re.compile(rf"^[\w.{{}}/-]*\w\.({_SUFFIXES})$")
_ENDS_LIKE_FILE = re.compile(rf"\.({_SUFFIXES})$")
CATALOGUE = ROOT / "pipelines" / "catalog.py"
#: Atomic writes and published sets name their temporaries after the target they are given
#: (``.<name>.<pid>.<token>``); they never name a file of their own.
WRITE_MECHANICS = ROOT / "pipelines" / "io.py"


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the docstring nodes (text about files may name them)."""
    out = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        first = body[0] if isinstance(body, list) and body else None
        value = first.value if isinstance(first, ast.Expr) else None
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            out.add(id(value))
    return out


def _catalogue_stems() -> set[str]:
    """The catalogue's multi-word names (``prioritised_leads``, ``forecast_fan``, ...)."""
    from pipelines import catalog

    names = {v for k, v in vars(catalog).items() if k.isupper() and isinstance(v, str)}
    return {n for n in names if "_" in n.strip("_")}


def file_name_literals(path: Path, stems: set[str]) -> list[str]:
    """Where ``path`` spells a file name: a string like ``x.json``, an f-string ending in
    such a suffix, ``folder / "name"``, or a string starting with a catalogue name."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docs, found = _docstrings(tree), []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            text = node.value
            if _FILE_NAME.match(text) or any(text.startswith(s) for s in stems):
                found.append(f"line {node.lineno}: {text!r}")
        elif isinstance(node, ast.JoinedStr) and node.values:
            last = node.values[-1]
            if isinstance(last, ast.Constant) and _ENDS_LIKE_FILE.search(str(last.value)):
                found.append(f"line {node.lineno}: f-string ending {last.value!r}")
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            right = node.right
            if isinstance(right, ast.JoinedStr) or (
                isinstance(right, ast.Constant) and isinstance(right.value, str)
            ):
                found.append(f"line {node.lineno}: a path joined with a literal")
    return found


def test_only_the_catalogue_spells_file_names():
    stems = _catalogue_stems()
    assert {"prioritised_leads", "forecast_fan", "funnel_report"} <= stems
    offenders = {
        str(path.relative_to(ROOT)): hits
        for path in sorted((ROOT / "pipelines").glob("*.py"))
        if path not in (CATALOGUE, WRITE_MECHANICS) and (hits := file_name_literals(path, stems))
    }
    assert not offenders, f"file names outside pipelines/catalog.py: {offenders}"


def test_the_file_name_check_catches_what_it_should(tmp_path):
    source = tmp_path / "x.py"
    source.write_text(
        'def f(out, day):\n    """Writes metrics.json."""\n    a = "metrics.json"\n'
        '    b = out / "model"\n    c = f"forecast_fan_{day}.png"\n    d = "prioritised_leads"\n'
        '    e = ".csv"\n    return a, b, c, d, e\n'
    )
    hits = file_name_literals(source, {"prioritised_leads"})
    assert [h.split(":")[0] for h in hits] == ["line 3", "line 4", "line 5", "line 6"], hits


def module_graph() -> dict[str, set[str]]:
    """Every module of the five packages -> the modules of them it imports (at the top,
    inside functions or for type checking alike: a circle is a circle)."""
    modules = {}
    for package in LAYERS:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return {name: _module_imports(name, path, modules) for name, path in modules.items()}


def _module_imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, *([node.module] if node.module else [])])
            targets |= {base} | {f"{base}.{a.name}" for a in node.names}
    found = set()
    for target in targets:
        while target and target not in modules:
            target = target.rpartition(".")[0]
        if target and target != name:
            found.add(target)
    return found


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_circles():
    found = circles(module_graph())
    assert not found, f"modules importing each other (directly or round a circle): {found}"


def test_the_circle_check_finds_a_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert circles(graph) == [["a", "b", "c"]]


#: Calls that touch the disk (unless into an in-memory buffer), and modules that exist to.
DISK_CALLS = {
    "open", "read_text", "write_text", "read_bytes", "write_bytes", "mkdir", "unlink",
    "rmdir", "touch", "iterdir", "glob", "rglob", "read_parquet", "read_csv", "read_excel",
    "read_json", "to_parquet", "to_excel", "savefig", "mkstemp", "fsync",
}  # fmt: skip
DISK_MODULES = {"shutil", "tempfile", "glob", "joblib", "pickle"}
OS_IN_MEMORY = {"environ", "getenv", "cpu_count", "getpid"}


def _buffers(tree: ast.AST) -> set[str]:
    """Names bound to ``io.BytesIO()`` / ``io.StringIO()`` (writing there is not I/O)."""
    return {
        target.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
        and getattr(node.value.func, "attr", getattr(node.value.func, "id", ""))
        in {"BytesIO", "StringIO"}
        for target in node.targets
        if isinstance(target, ast.Name)
    }  # fmt: skip


def disk_io(path: Path) -> list[str]:
    """Where ``path`` touches the disk: a call in :data:`DISK_CALLS` (not into a buffer),
    an ``os`` file function, or an import of a module in :data:`DISK_MODULES`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    modules = sorted(_imports(path) & DISK_MODULES)
    found, buffers = [f"imports {modules}"] if modules else [], _buffers(tree)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
        owner = getattr(func, "value", None)
        on_os = isinstance(owner, ast.Name) and owner.id == "os" and name not in OS_IN_MEMORY
        first = node.args[0] if node.args else None
        in_memory = isinstance(first, ast.Name) and first.id in buffers
        if (name in DISK_CALLS and not in_memory) or on_os:
            found.append(f"line {node.lineno}: {name}()")
    return found


@pytest.mark.parametrize("package", ["serving", "models", "features"])
def test_disk_io_only_in_crm_and_pipelines(package):
    """The libraries take and return frames and bytes; crm/ reads and writes CRM folders
    and pipelines/ everything else."""
    offenders = {
        str(path.relative_to(ROOT)): hits
        for path in sorted((ROOT / package).rglob("*.py"))
        if (hits := disk_io(path))
    }
    assert not offenders, f"disk I/O outside crm/ and pipelines/: {offenders}"


def test_the_disk_check_catches_what_it_should(tmp_path):
    source = tmp_path / "x.py"
    source.write_text(
        "import io\nimport shutil\n\ndef f(fig, frame, path):\n    buffer = io.BytesIO()\n"
        "    fig.savefig(buffer)\n    frame.to_parquet(path)\n    return path.read_text()\n"
    )
    assert disk_io(source) == ["imports ['shutil']", "line 7: to_parquet()", "line 8: read_text()"]


#: The shell is a thin catalogue of steps: no function of pipelines/ is longer than this.
MAX_SHELL_FUNCTION_LINES = 40


def long_functions(path: Path, limit: int) -> list[str]:
    """``name (lines)`` of each function in ``path`` longer than ``limit`` lines (from its
    ``def`` to its last line, decorators not counted)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        f"{node.name} ({node.end_lineno - node.lineno + 1})"
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > limit
    ]


def test_shell_functions_are_short():
    offenders = {
        str(path.relative_to(ROOT)): hits
        for path in sorted((ROOT / "pipelines").glob("*.py"))
        if (hits := long_functions(path, MAX_SHELL_FUNCTION_LINES))
    }
    assert not offenders, f"functions over {MAX_SHELL_FUNCTION_LINES} lines: {offenders}"


def test_the_length_check_counts_from_def_to_the_last_line(tmp_path):
    source = tmp_path / "x.py"
    source.write_text("@decorator\ndef f():\n    a = 1\n    return a\n\n\ndef g():\n    pass\n")
    assert long_functions(source, 2) == ["f (3)"]
