"""The shape of ``memory/``: one owner per table, imports that run one way, value lists that
agree with the schema. Read from the source (AST), so a shortcut cannot hide at run time."""

from __future__ import annotations

import ast
import sqlite3
import typing
from pathlib import Path

import pytest

from clin.memory import LearningEvent, LearningStatus, Memory, RunStatus, Scope, TrialStatus
from clin.memory import migrations as core

MEMORY = Path(core.__file__).parent
MODULES = {p.stem: ast.parse(p.read_text(), str(p)) for p in sorted(MEMORY.glob("*.py"))}
CORE_TABLES = ("runs", "trials", "steps", "llm_calls", "learnings", "learning_events")
WRITE = ("INSERT INTO", "UPDATE", "DELETE FROM", "REPLACE INTO")


def memory_imports(tree: ast.Module) -> list[ast.ImportFrom]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
            and (n.level >= 1 or (n.module or "").startswith("clin.memory"))]


def imported_module(node: ast.ImportFrom) -> str:
    return (node.module or "").removeprefix("clin.memory").lstrip(".")


def test_no_module_imports_a_private_name_of_another() -> None:
    bad = [f"{mod}: from {'.' * n.level}{n.module or ''} import {a.name}"
           for mod, tree in MODULES.items() for n in memory_imports(tree)
           for a in n.names if a.name.startswith("_")]
    assert bad == []


def test_no_private_attribute_of_another_object_or_module() -> None:
    """``mem._insert(...)`` or ``store._apply_reflection(...)``: reaching into another
    object's privates is what the split removed; only ``self``/``cls`` may."""
    bad = []
    for mod, tree in MODULES.items():
        for n in ast.walk(tree):
            if (isinstance(n, ast.Attribute) and n.attr.startswith("_")
                    and not n.attr.startswith("__")
                    and not (isinstance(n.value, ast.Name) and n.value.id in ("self", "cls"))):
                bad.append(f"{mod}:{n.lineno} .{n.attr}")
    assert bad == []


def test_no_function_local_imports() -> None:
    bad = []
    for mod, tree in MODULES.items():
        for fn in ast.walk(tree):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                bad += [f"{mod}:{n.lineno}" for n in ast.walk(fn)
                        if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert bad == []


def graph() -> dict[str, set[str]]:
    deps: dict[str, set[str]] = {mod: set() for mod in MODULES}
    for mod, tree in MODULES.items():
        for n in memory_imports(tree):
            target = imported_module(n)
            if target:
                deps[mod].add(target.split(".")[0])
            else:  # from . import runs, learnings
                deps[mod] |= {a.name for a in n.names if a.name in MODULES}
    return deps


def test_module_graph_is_acyclic() -> None:
    deps = graph()
    state: dict[str, int] = {}

    def visit(mod: str, path: list[str]) -> None:
        if state.get(mod) == 1:
            raise AssertionError("import cycle: " + " -> ".join([*path, mod]))
        if state.get(mod) == 2:
            return
        state[mod] = 1
        for dep in sorted(deps.get(mod, ())):
            visit(dep, [*path, mod])
        state[mod] = 2

    for mod in sorted(deps):
        visit(mod, [])
    assert "store" in deps["add"]  # the check sees real edges
    assert "store" not in deps["learnings"] and "store" not in deps["runs"]


def sql_strings(tree: ast.Module) -> list[str]:
    """Each string constant, with implicitly concatenated parts already joined by ast."""
    out = []
    for n in ast.walk(tree):
        if isinstance(n, ast.Constant) and isinstance(n.value, str):
            out.append(n.value)
        elif isinstance(n, ast.JoinedStr):
            out.append("".join(v.value if isinstance(v, ast.Constant) else "{}"
                               for v in n.values))
    return out


def writers(table: str, trees: dict[str, ast.Module], bare_names: bool = True) -> set[str]:
    found = set()
    for mod, tree in trees.items():
        for s in sql_strings(tree):
            up = " ".join(s.split()).upper()
            if any(f"{w} {table.upper()} " in up + " " or f"{w} [{table.upper()}]" in up
                   for w in WRITE):
                found.add(mod)
        if bare_names and mod != "migrations" and any(
                isinstance(n, ast.Call) and any(isinstance(a, ast.Constant) and a.value == table
                                                for a in n.args)
                for n in ast.walk(tree)):
            found.add(mod)  # insert(conn, "steps", ...) style
    return found


@pytest.mark.parametrize("table,owner", [
    ("runs", "runs"), ("trials", "runs"), ("steps", "runs"), ("llm_calls", "runs"),
    ("learnings", "learnings"), ("learning_events", "learnings"),
])
def test_one_module_writes_each_core_table(table: str, owner: str) -> None:
    assert writers(table, MODULES) == {owner}


def test_trials_writes_no_sql_against_memory_core_tables() -> None:
    import clin.trials

    trials_dir = Path(clin.trials.__file__).parent
    trees = {p.stem: ast.parse(p.read_text()) for p in trials_dir.glob("*.py")
             if p.stem != "schema"}  # its views read the core tables; they write nothing
    for table in CORE_TABLES:
        assert writers(table, trees, bare_names=False) == set(), table
    reads = [f"{mod}: {s[:60]}" for mod, tree in trees.items() for s in sql_strings(tree)
             if any(f"FROM {t} " in " ".join(s.split()) + " " or f"JOIN {t} " in s
                    for t in CORE_TABLES)]
    assert reads == []


@pytest.mark.parametrize("literal,values", [
    (RunStatus, core.RUN_STATUSES), (TrialStatus, core.TRIAL_STATUSES),
    (LearningStatus, core.LEARNING_STATUSES), (LearningEvent, core.LEARNING_EVENTS),
])
def test_literals_agree_with_the_schema(literal: object, values: tuple[str, ...]) -> None:
    assert set(typing.get_args(literal)) == set(values)


def test_schema_refuses_values_outside_the_lists(mem: Memory) -> None:
    run = mem.start_run()
    trial = mem.start_trial(run, 1, Scope())
    with pytest.raises(sqlite3.IntegrityError, match="trials.status must be one of"):
        mem.mark_trial(trial, "paused")  # type: ignore[arg-type]
    with pytest.raises(sqlite3.IntegrityError, match="runs.status"):
        mem.finish_run(run, "done")  # type: ignore[arg-type]
    lid = mem.add_learning(Scope(), "a lamp MAY BE NECESSARY to see").id
    with pytest.raises(sqlite3.IntegrityError, match="learning_events.event"), \
            mem.transaction() as conn:
        conn.execute("INSERT INTO learning_events (learning_id, event) VALUES (?, 'dropped')",
                     [lid])
    assert mem.db.execute("SELECT status FROM trials").fetchone()[0] == "running"
