"""Move one run between memories: the learnings a run may recall go out to a private memory,
the run's rows (run, trials, steps, LLM calls, the learnings it wrote and their events) come
back and are written into the main memory in one transaction.

This is how a run can happen on another machine while the main SQLite file keeps a single
writer: the worker never opens the main file. Row ids are reassigned on import; learnings
seeded with :func:`seed_learnings` keep their ids on both sides, so cited learning ids and
events that point at them need no translation. The writes themselves belong to the tables'
owners (``memory.runs``, ``memory.learnings``); this module reads and orchestrates.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from pydantic import BaseModel

from . import learnings, runs
from .scope import Scope, scope_filter
from .store import Memory

Rows = list[dict[str, Any]]


class RunRows(BaseModel):
    """Every row one run wrote, as plain dicts keyed by column (ids as in the source memory)."""

    run: dict[str, Any]
    trials: Rows
    steps: Rows
    llm_calls: Rows
    learnings: Rows  # the learnings the run created (not the seeded ones)
    learning_events: Rows  # what the run's reflections did, to new and seeded learnings

    def counts(self) -> dict[str, int]:
        return {k: len(v) for k, v in self if isinstance(v, list)}


class Imported(BaseModel):
    """Where an imported run landed: its new id and the old -> new id maps."""

    run_id: int
    trial_ids: dict[int, int]
    learning_ids: dict[int, int]


def recallable_learnings(mem: Memory, scope: Scope) -> Rows:
    """The ``learnings`` rows a run at ``scope`` may recall or update: its own scope and its
    ancestors, active or retired, whole rows with their ids."""
    where, params = scope_filter(scope)
    return list(mem.db.query(f"SELECT * FROM learnings WHERE {where} ORDER BY id", params))


def seed_learnings(mem: Memory, rows: Rows) -> None:
    """Insert ``rows`` (from :func:`recallable_learnings` of another memory) with their ids;
    links to trials of the other memory are dropped (they do not exist here)."""
    with mem.transaction() as conn:
        learnings.seed_rows(conn, rows)


def export_run(mem: Memory, run_id: int, *, seeded: set[int] | frozenset[int] = frozenset()
               ) -> RunRows:
    """The rows of run ``run_id`` from a private memory that holds only this run and the
    ``seeded`` learnings: every other learning is the run's (written by its reflections, or
    inherited copies of seeded ones), and comes with all its events; seeded learnings stay
    out (the main memory has them), their events on this run's trials come along."""
    q = mem.db.query
    trials = list(q("SELECT * FROM trials WHERE run_id = ? ORDER BY id", [run_id]))
    tids = [t["id"] for t in trials]
    marks = ", ".join("?" for _ in tids) or "NULL"
    lids = [r["id"] for r in q("SELECT id FROM learnings ORDER BY id") if r["id"] not in seeded]
    lmarks = ", ".join("?" for _ in lids) or "NULL"
    events = list(q(f"SELECT * FROM learning_events WHERE trial_id IN ({marks}) "
                    f"OR learning_id IN ({lmarks}) ORDER BY id", [*tids, *lids]))
    return RunRows(
        run=next(iter(q("SELECT * FROM runs WHERE id = ?", [run_id]))),
        trials=trials,
        steps=list(q(f"SELECT * FROM steps WHERE trial_id IN ({marks}) ORDER BY id", tids)),
        llm_calls=list(q(f"SELECT * FROM llm_calls WHERE run_id = ? OR trial_id IN ({marks}) "
                         "ORDER BY id", [run_id, *tids])),
        learnings=list(q(f"SELECT * FROM learnings WHERE id IN ({lmarks}) ORDER BY id", lids)),
        learning_events=events,
    )


def import_run(conn: sqlite3.Connection, rows: RunRows,
               config: dict[str, Any] | None = None) -> Imported:
    """Insert ``rows`` through ``conn``, inside the caller's :meth:`Memory.transaction`, so
    they land together with the caller's own bookkeeping or not at all. ``config`` is merged
    into the run's config (e.g. where it ran)."""
    run_id, trial_ids = runs.copy_run(conn, rows.run, rows.trials, config)
    learning_ids = learnings.copy_rows(conn, rows.learnings, rows.learning_events, trial_ids)
    runs.copy_steps_and_calls(conn, rows.steps, rows.llm_calls, {rows.run["id"]: run_id},
                              trial_ids, learning_ids)
    return Imported(run_id=run_id, trial_ids=trial_ids, learning_ids=learning_ids)
