"""The package's import graph has no cycle: every import (module level or inside a function) points down the layers.

Parsed from the source with `ast`, so an import hidden inside a function counts like any other, and so does one
under `if TYPE_CHECKING:`: it never runs, but a type named across the layers is a dependency all the same (the env's
parts name `EnvConfig` from rlsched.env.config, below the env that imports them). An import
`a.b.c` is an edge to module a.b.c only: Python also runs the packages a and a.b first, but counting those would
turn every package that re-exports its submodules into a cycle of its own.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("rlsched",)


def module_files() -> dict[str, Path]:
    """Dotted module name -> source file, for every module of the packages (a package is its __init__)."""
    out = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _imports(tree: ast.AST):
    """Every import node, at any depth (functions, classes, branches, `if TYPE_CHECKING:` blocks)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node


def import_graph(files: dict[str, Path]) -> dict[str, set[str]]:
    """module -> the package modules it imports."""
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        is_pkg = path.name == "__init__.py"
        targets: set[str] = set()
        for node in _imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
                continue
            base = node.module or ""
            if node.level:  # relative: from the module's package, one level up per extra dot
                pkg = name.split(".") if is_pkg else name.split(".")[:-1]
                pkg = pkg[: len(pkg) - (node.level - 1)]
                base = ".".join(pkg + ([base] if base else []))
            # `from a import b`: b is the submodule a.b when there is one, else a name in a.
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                targets.add(sub if sub in files else base)
        graph[name] = {t for t in targets if t in files and t != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as [a, b, ..., a], or None (depth-first search, three colours)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, stack = set(), [start]
    while stack:
        for nxt in graph[stack.pop()] - seen:
            seen.add(nxt)
            stack.append(nxt)
    return seen


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph(module_files())


def test_the_package_import_graph_has_no_cycle(graph):
    assert len(graph) > 20 and "rlsched.bench.harness" in graph["rlsched.bench.evaluate"]  # the parse saw the package
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_env_reaches_no_controller(graph):
    """The paired reward's baseline run is handed to the env (rlsched.env.reference.ReferenceRunner), not imported."""
    controllers = {m for m in graph if m.startswith("rlsched.control")}
    assert controllers, "no rlsched.control modules found: update this test to the package's layout"
    env_modules = [m for m in graph if m == "rlsched.env" or m.startswith("rlsched.env.")]
    assert env_modules, "no rlsched.env modules found: update this test to the package's layout"
    for env_module in env_modules:
        assert not reachable(graph, env_module) & controllers, f"{env_module} reaches rlsched.control"


def test_the_cycle_finder_finds_cycles_hidden_in_functions_and_type_checking_blocks(tmp_path):
    """The check above could only pass vacuously if the parser missed function-level or type-only imports."""
    (tmp_path / "a.py").write_text("def f():\n    from b import x\n")
    (tmp_path / "b.py").write_text("import c\n")
    (tmp_path / "c.py").write_text("import a\n")
    files = {p.stem: p for p in tmp_path.glob("*.py")}
    g = import_graph(files)
    assert g == {"a": {"b"}, "b": {"c"}, "c": {"a"}}
    assert find_cycle(g) == ["a", "b", "c", "a"]
    (tmp_path / "c.py").write_text("import typing\n")
    assert find_cycle(import_graph(files)) is None
    (tmp_path / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import a\n")
    assert find_cycle(import_graph(files)) == ["a", "b", "c", "a"]


LAYERS = ("env", "control", "train", "bench")  # each may import the ones before it (and rlsched's top modules)


def test_the_packages_import_downward_only(graph):
    """rlsched.env <- rlsched.control <- rlsched.train, rlsched.bench: the folder tree is the architecture. train
    and bench sit side by side (neither imports the other)."""
    allowed = {
        "env": {"env"},
        "control": {"env", "control"},
        "train": {"env", "control", "train"},
        "bench": {"env", "control", "bench"},
    }
    bad = []
    for mod, deps in graph.items():
        layer = mod.split(".")[1] if mod.count(".") >= 2 else None
        if layer not in allowed:
            continue
        for dep in deps:
            dep_layer = dep.split(".")[1] if dep.count(".") >= 1 else None
            if dep_layer in LAYERS and dep_layer not in allowed[layer]:
                bad.append(f"{mod} -> {dep}")
    assert not bad, "imports against the layers:\n" + "\n".join(sorted(bad))
