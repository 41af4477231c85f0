"""Move one run between memories: the learnings a run may recall go out to a private memory,
the run's rows (run, trials, steps, LLM calls, the learnings it wrote and their events) come
back and are written into the main memory in one transaction.

This is how a run can happen on another machine while the main SQLite file keeps a single
writer: the worker never opens the main file. Row ids are reassigned on import; learnings
seeded with :func:`seed_learnings` keep their ids on both sides, so cited learning ids and
events that point at them need no translation.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from pydantic import BaseModel

from .db import insert
from .scope import Scope, scope_filter
from .store import Memory

# Tables of a run, parents first (the order rows are inserted in).
RUN_TABLES = ("runs", "trials", "steps", "llm_calls", "learnings", "learning_events")


class RunRows(BaseModel):
    """Every row one run wrote, as plain dicts keyed by column (ids as in the source memory)."""

    run_id: int
    tables: dict[str, list[dict[str, Any]]]

    def count(self, table: str) -> int:
        return len(self.tables.get(table, []))


def recallable_learnings(mem: Memory, scope: Scope) -> list[dict[str, Any]]:
    """The ``learnings`` rows a run at ``scope`` may recall or update: its own scope and its
    ancestors, active or retired, whole rows with their ids."""
    where, params = scope_filter(scope)
    return list(mem.db.query(f"SELECT * FROM learnings WHERE {where} ORDER BY id", params))


def seed_learnings(mem: Memory, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` (from :func:`recallable_learnings` of another memory) with their ids;
    links to trials of the other memory are dropped (they do not exist here)."""
    with mem.transaction() as conn:
        for row in rows:
            insert(conn, "learnings", {**row, "first_trial_id": None, "last_trial_id": None})


def export_run(mem: Memory, run_id: int, *, seeded: set[int] | frozenset[int] = frozenset()
               ) -> RunRows:
    """The rows of run ``run_id``; learnings whose id is in ``seeded`` stay out (the main
    memory has them), their events on this run's trials come along."""
    q = mem.db.query
    trials = list(q("SELECT * FROM trials WHERE run_id = ? ORDER BY id", [run_id]))
    tids = [t["id"] for t in trials]
    marks = ", ".join("?" for _ in tids) or "NULL"
    events = list(q(f"SELECT * FROM learning_events WHERE trial_id IN ({marks}) ORDER BY id",
                    tids))
    lids = sorted({e["learning_id"] for e in events} - set(seeded))
    lmarks = ", ".join("?" for _ in lids) or "NULL"
    return RunRows(run_id=run_id, tables={
        "runs": list(q("SELECT * FROM runs WHERE id = ?", [run_id])),
        "trials": trials,
        "steps": list(q(f"SELECT * FROM steps WHERE trial_id IN ({marks}) ORDER BY id", tids)),
        "llm_calls": list(q("SELECT * FROM llm_calls WHERE run_id = ? OR trial_id IN "
                            f"({marks}) ORDER BY id", [run_id, *tids])),
        "learnings": list(q(f"SELECT * FROM learnings WHERE id IN ({lmarks}) ORDER BY id",
                            lids)),
        "learning_events": events,
    })


def import_run(conn: sqlite3.Connection, rows: RunRows) -> dict[str, dict[int, int]]:
    """Insert ``rows`` through ``conn`` (inside the caller's :meth:`Memory.transaction`, so
    they land together with the caller's own bookkeeping or not at all). Returns the id
    mapping per table (old id -> new id). Learnings not in ``rows`` keep their ids."""
    ids: dict[str, dict[int, int]] = {t: {} for t in RUN_TABLES}

    def ref(table: str, value: int | None) -> int | None:
        return None if value is None else ids[table].get(value, value)

    def put(table: str, row: dict[str, Any], **links: int | None) -> None:
        new = insert(conn, table, {**{k: v for k, v in row.items() if k != "id"}, **links})
        ids[table][row["id"]] = new

    for r in rows.tables.get("runs", []):
        put("runs", r)
    for r in rows.tables.get("trials", []):
        put("trials", r, run_id=ref("runs", r["run_id"]))
    for r in rows.tables.get("learnings", []):
        put("learnings", r, first_trial_id=ref("trials", r["first_trial_id"]),
            last_trial_id=ref("trials", r["last_trial_id"]))
    for r in rows.tables.get("steps", []):
        cited = json.loads(r["cited_learning_ids"] or "[]")
        put("steps", r, trial_id=ref("trials", r["trial_id"]),
            cited_learning_ids=json.dumps([ref("learnings", i) for i in cited]))
    for r in rows.tables.get("llm_calls", []):
        put("llm_calls", r, run_id=ref("runs", r["run_id"]),
            trial_id=ref("trials", r["trial_id"]))
    for r in rows.tables.get("learning_events", []):
        put("learning_events", r, learning_id=ref("learnings", r["learning_id"]),
            trial_id=ref("trials", r["trial_id"]))
    return ids
