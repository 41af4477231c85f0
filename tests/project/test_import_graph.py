"""Across every package of the ``clin`` namespace: no import cycle between modules and no
``_private`` name imported from another module. Read from the source (AST), function-local
imports included (a cycle hidden inside a function is still a cycle); only imports under
``if TYPE_CHECKING:`` are left out, as they never run."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support.project import ROOT, ROOTS


def modules() -> dict[str, Path]:
    """Every module of the namespace, by dotted name (a package by its own name)."""
    found: dict[str, Path] = {}
    for root in ROOTS:
        for path in sorted((ROOT / root / "clin").rglob("*.py")):
            parts = path.relative_to(ROOT / root).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = modules()


def _runtime_nodes(tree: ast.Module):
    """Every node except those under ``if TYPE_CHECKING:``."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            stack.extend(node.orelse)
            continue
        yield node
        stack.extend(ast.iter_child_nodes(node))


def imports(name: str) -> list[tuple[str, str | None]]:
    """(module imported, name taken from it or None) for each import in module ``name``."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: list[tuple[str, str | None]] = []
    for node in _runtime_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.extend((a.name, None) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            out.extend((module, a.name) for a in node.names)
    return out


def edges(name: str) -> set[str]:
    """The namespace's modules that ``name`` imports (``from pkg import mod`` -> pkg.mod)."""
    out: set[str] = set()
    for module, taken in imports(name):
        if taken and f"{module}.{taken}" in MODULES:
            out.add(f"{module}.{taken}")
            continue
        while module and module not in MODULES:  # import a.b.c: the deepest module that exists
            module = module.rpartition(".")[0]
        if module and module != name:
            out.add(module)
    return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_walk_sees_every_package_and_a_known_edge() -> None:
    """The checker itself: all parts of the namespace, relative and local imports resolved."""
    tops = {n.split(".")[1] for n in MODULES if n.count(".") >= 1}
    assert {"memory", "envs", "prompts", "trials", "cli", "viewer", "llm", "agent"} <= tops
    assert "clin.memory.store" in edges("clin.memory")  # from .store import Memory
    assert cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]


def test_no_import_cycle_between_modules() -> None:
    assert cycles({name: edges(name) for name in MODULES}) == []


def test_no_private_name_imported_from_another_module() -> None:
    bad = sorted(f"{name}: from {module} import {taken}"
                 for name in MODULES for module, taken in imports(name)
                 if module.startswith("clin") and module != name and taken
                 and taken.startswith("_") and not taken.startswith("__"))
    assert bad == []
