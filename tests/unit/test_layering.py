"""The package layering of docs/architecture.md, enforced: each package imports only the
packages its row names (lazy imports included), and no two modules import each other at
load time (an import cycle)."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
ARCHITECTURE = ROOT / "docs" / "architecture.md"

BELOW_APP = {"core", "config", "imaging", "models", "faces", "storage", "evaluation",
             "galleries", "video", "alerts", "attendance", "pipeline", "oversight", "checks"}

# Mirrors the table "Layers" in docs/architecture.md; a change to one is a change to both
# (test_the_architecture_table_is_the_layering compares them).
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "imaging": {"core"},
    "models": {"core", "imaging"},
    "faces": {"core", "imaging", "models"},
    "storage": {"core"},
    "evaluation": {"core", "imaging", "faces"},
    "evaluation.runner": {"app", "config", "core", "imaging", "faces", "evaluation"},
    "galleries": {"core", "imaging", "models", "faces", "storage", "evaluation"},
    "video": {"core", "imaging", "models", "storage"},
    "alerts": {"core", "imaging", "storage", "video"},
    "checks": {"core", "imaging", "models", "faces", "storage"},
    "attendance": {"core", "storage", "video"},
    "pipeline": {"core", "imaging", "models", "storage", "video", "galleries", "alerts",
                 "attendance"},
    "config": {"core", "imaging", "models", "faces", "storage", "pipeline", "evaluation"},
    "oversight": {"core", "imaging", "storage", "galleries", "video", "alerts", "attendance",
                  "pipeline"},
    "edge": {"core", "imaging", "models", "video", "pipeline"},
    "app": BELOW_APP,
    "web": {"core", "oversight", "app"},
    "api": BELOW_APP | {"app", "web"},
    "cli": BELOW_APP | {"app", "api", "evaluation.runner", "edge"},
}


def _modules() -> dict[str, Path]:
    found = {}
    for path in (SRC / "frvs").rglob("*.py"):
        parts = path.relative_to(SRC).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _layer(module: str) -> str:
    parts = module.split(".")
    if parts[1:3] == ["evaluation", "runner"]:
        return "evaluation.runner"
    return parts[1]


def _imports(tree: ast.AST, modules: dict[str, Path]) -> set[str]:
    """The frvs modules a syntax tree imports (``from a import b`` may name module b)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("frvs"):
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names if a.name.startswith("frvs"))
    return {n for n in names if n in modules}


def _load_time_imports(tree: ast.Module, modules: dict[str, Path]) -> set[str]:
    """Imports executed when the module loads: top level, outside TYPE_CHECKING blocks;
    imports inside functions are deliberate lazy imports and cannot form a load cycle."""
    eager = ast.Module(body=[n for n in tree.body if not (
        isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test))], type_ignores=[])
    kept = [n for n in eager.body if not isinstance(
        n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    classes = [n for n in eager.body if isinstance(n, ast.ClassDef)]
    # Class bodies run at load time too, but their methods do not.
    for cls in classes:
        kept.extend(n for n in cls.body
                    if not isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)))
    return _imports(ast.Module(body=kept, type_ignores=[]), modules)


def _documented_layers(markdown: str) -> dict[str, set[str]]:
    """The "Layers" table of the architecture document: the package in backticks in the
    first column, the packages it may import, comma-separated, in the second."""
    section = markdown.split("\n## Layers\n", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, set[str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or not (cells[0].startswith("`") and cells[0].endswith("`")):
            continue
        rows[cells[0].strip("`")] = {n.strip() for n in cells[1].split(",") if n.strip()}
    return rows


@pytest.fixture(scope="module")
def trees() -> dict[str, ast.Module]:
    return {name: ast.parse(path.read_text(encoding="utf-8"))
            for name, path in _modules().items()}


def test_every_package_has_a_row() -> None:
    layers = {_layer(m) for m in _modules() if m.count(".") >= 1}
    assert layers <= set(ALLOWED), f"packages missing from the layering: {layers - set(ALLOWED)}"


def test_the_architecture_table_is_the_layering() -> None:
    """docs/architecture.md's "Layers" table says exactly what ALLOWED enforces."""
    documented = _documented_layers(ARCHITECTURE.read_text(encoding="utf-8"))
    assert documented == ALLOWED


def test_the_table_reader_reads_rows_and_empty_cells() -> None:
    """The reader itself: a row with no import is an empty set, prose rows are skipped."""
    doc = ("# A\n## Layers\ntext\n\n| package | may import | why |\n| --- | --- | --- |\n"
           "| `core` | | nothing |\n| `video` | core, storage | |\n## Next\n| `x` | y | |\n")
    assert _documented_layers(doc) == {"core": set(), "video": {"core", "storage"}}


def test_packages_import_only_what_the_architecture_allows(
        trees: dict[str, ast.Module]) -> None:
    modules = _modules()
    wrong: dict[str, set[str]] = defaultdict(set)
    for name, tree in trees.items():
        if name.count(".") < 1:
            continue
        layer = _layer(name)
        for target in _imports(tree, modules):
            other = _layer(target)
            if other != layer and other not in ALLOWED[layer]:
                wrong[f"{layer} ({name})"].add(other)
    assert not wrong, f"imports against the layering: {dict(wrong)}"


def test_shells_are_imported_by_nothing_below_them(trees: dict[str, ast.Module]) -> None:
    modules = _modules()
    for name, tree in trees.items():
        if name.count(".") < 1 or _layer(name) in {"api", "cli", "web"}:
            continue
        shells = {_layer(t) for t in _imports(tree, modules)} & {"api", "cli", "web"}
        assert not shells, f"{name} imports the shell(s) {shells}"


def test_no_import_cycles_at_load_time(trees: dict[str, ast.Module]) -> None:
    modules = _modules()
    graph = {name: _load_time_imports(tree, modules) - {name} for name, tree in trees.items()}
    # A module importing its own package's __init__ is no cycle worth reporting.
    graph = {n: {t for t in ts if not n.startswith(f"{t}.")} for n, ts in graph.items()}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt):], nxt] if nxt in path else [node, nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    assert not cycles, f"import cycles: {cycles[:5]}"


def test_the_cycle_check_sees_a_cycle(tmp_path: Path) -> None:
    """The checker itself: two modules importing each other are reported."""
    fake = {"frvs.a": tmp_path / "a.py", "frvs.b": tmp_path / "b.py"}
    a = ast.parse("from frvs.b import x\n")
    b = ast.parse("import frvs.a\n")
    assert _load_time_imports(a, fake) == {"frvs.b"}
    assert _load_time_imports(b, fake) == {"frvs.a"}
    lazy = ast.parse("def f():\n    from frvs.b import x\n")
    assert _load_time_imports(lazy, fake) == set()
