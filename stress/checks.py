"""Invariants of a CLIN database that must hold after any crash, kill or concurrent write."""

from __future__ import annotations

import sqlite3
from pathlib import Path


class InvariantError(AssertionError):
    """The database broke a promise of ``clin.memory`` (message says which)."""


def _open_ro(db: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"{Path(db).resolve().as_uri()}?mode=ro", uri=True, timeout=60)


def count(db: Path, sql: str) -> int:
    """The first column of ``sql``'s first row in a database a live process may be writing;
    0 while the file or the table does not exist yet."""
    if not db.exists():
        return 0
    conn = _open_ro(db)
    try:
        return conn.execute(sql).fetchone()[0]
    except sqlite3.OperationalError:
        return 0
    finally:
        conn.close()


def check_db(db: Path) -> dict[str, int]:
    """Integrity and whole trials: ``PRAGMA integrity_check`` is ok, no foreign key dangles,
    every completed trial has a score, a finish time and exactly its steps 1..n, no run has
    two completed trials with the same index. Returns counts for reports."""
    if not Path(db).exists():
        return {"completed_trials": 0}  # killed before it created the file (slow start-up)
    conn = _open_ro(db)
    try:
        (ok,) = conn.execute("PRAGMA integrity_check").fetchone()
        if ok != "ok":
            raise InvariantError(f"integrity_check: {ok}")
        (fk,) = conn.execute("SELECT count(*) FROM pragma_foreign_key_check").fetchone()
        if fk:
            raise InvariantError(f"{fk} rows break foreign keys")
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        if not {"runs", "trials", "steps", "llm_calls", "learnings"} <= names:
            return {"completed_trials": 0}  # killed before the schema was complete
        completed = conn.execute(
            "SELECT id, score, finished_at, steps FROM trials WHERE status = 'completed'"
        ).fetchall()
        for tid, score, finished, steps in completed:
            if score is None or finished is None:
                raise InvariantError(f"trial {tid} is completed without score/finished_at")
            idxs = [r[0] for r in conn.execute(
                "SELECT idx FROM steps WHERE trial_id = ? ORDER BY idx", [tid])]
            if idxs != list(range(1, (steps or 0) + 1)):
                raise InvariantError(f"trial {tid} says {steps} steps but stores {idxs}")
        dup = conn.execute(
            "SELECT run_id, idx FROM trials WHERE status = 'completed' "
            "GROUP BY run_id, idx HAVING count(*) > 1"
        ).fetchall()
        if dup:
            raise InvariantError(f"trials completed twice: {dup}")
        (bad,) = conn.execute(
            "SELECT count(*) FROM trials WHERE status != 'completed' AND completed = 1"
        ).fetchone()
        if bad:
            raise InvariantError(f"{bad} unfinished trials are flagged completed")
        counts = {}
        for table in ("runs", "trials", "steps", "llm_calls", "learnings"):
            (counts[table],) = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        counts["completed_trials"] = len(completed)
        return counts
    finally:
        conn.close()


def check_finished_runs(db: Path, trials: int) -> int:
    """Every finished run holds exactly trials 1..``trials`` as completed; returns how many
    runs finished."""
    conn = _open_ro(db)
    try:
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'runs'").fetchone():
            return 0
        runs = [r[0] for r in conn.execute("SELECT id FROM runs WHERE status = 'finished'")]
        for run_id in runs:
            idxs = [r[0] for r in conn.execute(
                "SELECT idx FROM trials WHERE run_id = ? AND status = 'completed' ORDER BY idx",
                [run_id])]
            if idxs != list(range(1, trials + 1)):
                raise InvariantError(f"finished run {run_id} has completed trials {idxs}")
        return len(runs)
    finally:
        conn.close()
