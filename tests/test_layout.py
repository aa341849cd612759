"""The shape of the package: imports point one way, and no module reaches into another's
private parts (CONVENTIONS.md: one core, imported by everything, importing nothing above it)."""

from __future__ import annotations

import ast
import pathlib

import pytest

import parity

PACKAGE = pathlib.Path(parity.__file__).parent
# Private attributes of something other than `self`/`cls` that are allowed: the standard
# library's own public-but-underscored names.
ALLOWED_PRIVATE = {("os", "_exit")}


def import_graph(package: pathlib.Path) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (at the top or inside a function), from the
    source: `from .x import y`, `from . import x`."""
    graph: dict[str, set[str]] = {}
    for path in sorted(package.glob("*.py")):
        deps = graph.setdefault(path.stem, set())
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                if node.module:
                    deps.add(node.module.split(".")[0])
                else:
                    deps.update(a.name for a in node.names)
    for deps in graph.values():
        deps &= set(graph)  # `from . import __version__` is a name, not a module
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle (its modules, the first repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for dep in sorted(graph.get(module, ())):
            if state.get(dep) == 1:
                return path[path.index(dep):] + [dep]
            if dep not in state and (found := visit(dep)):
                return found
        path.pop()
        state[module] = 2
        return None

    for module in sorted(graph):
        if module not in state and (found := visit(module)):
            return found
    return None


def private_reach_through(path: pathlib.Path) -> list[str]:
    """`other._name` (not self/cls, not a dunder) and `from .x import _name` in one module."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (isinstance(node, ast.Attribute) and node.attr.startswith("_")
                and not node.attr.startswith("__")):
            base = node.value.id if isinstance(node.value, ast.Name) else None
            if base not in ("self", "cls") and (base, node.attr) not in ALLOWED_PRIVATE:
                found.append(f"{path.name}:{node.lineno}: {base or '...'}.{node.attr}")
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            found += [f"{path.name}:{node.lineno}: from .{node.module} import {a.name}"
                      for a in node.names if a.name.startswith("_")
                      and not a.name.startswith("__")]
    return found


# -- the finders find what they look for --------------------------------------------------------
def test_find_cycle_finds_a_planted_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    cycle = find_cycle(graph)
    assert cycle is not None and cycle[0] == cycle[-1] and set(cycle) == {"a", "b", "c"}
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_the_graph_sees_imports_inside_functions(tmp_path):
    (tmp_path / "top.py").write_text("def f():\n    from .low import x\n")
    (tmp_path / "low.py").write_text("from . import top\n")
    graph = import_graph(tmp_path)
    assert graph == {"top": {"low"}, "low": {"top"}}
    assert find_cycle(graph) is not None


def test_reach_through_is_seen(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("from .x import _hidden\n\ndef f(ev):\n    return ev._call(self._ok)\n")
    assert private_reach_through(module) == ["m.py:1: from .x import _hidden",
                                             "m.py:4: ev._call"]


# -- the package --------------------------------------------------------------------------------
def test_parity_has_no_import_cycle():
    graph = import_graph(PACKAGE)
    assert len(graph) > 20, "the package's modules were not found"
    assert find_cycle(graph) is None, f"import cycle: {' -> '.join(find_cycle(graph))}"


@pytest.mark.parametrize("module", ["adapter", "misbehaviour", "tolerances", "process_state",
                                    "workers"])
def test_the_floor_imports_nothing_of_the_package(module):
    assert import_graph(PACKAGE)[module] == set()


def test_the_evaluation_core_imports_nothing_above_it():
    above = {"checks", "properties", "metamorphic", "training", "diagnose", "runner",
             "isolation", "cli", "plugin", "report", "expected", "packed", "strides"}
    graph = import_graph(PACKAGE)
    reachable, todo = set(), ["evaluation"]
    while todo:
        for dep in graph[todo.pop()]:
            if dep not in reachable:
                reachable.add(dep)
                todo.append(dep)
    assert not reachable & above


def test_no_module_reaches_into_another_modules_private_parts():
    found = [hit for path in sorted(PACKAGE.glob("*.py")) for hit in private_reach_through(path)]
    assert found == []
