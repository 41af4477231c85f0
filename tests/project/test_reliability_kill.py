"""Killed runs: SIGKILL `clin run` at random moments and resume with --resume (the fast
variant of stress/kill_resume.py; the script runs 50 kills)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stress.checks import check_db, check_finished_runs
from stress.kill_resume import stress


@pytest.mark.scienceworld  # each `clin run` starts its own JVM
def test_sigkilled_runs_resume_cleanly(tmp_path: Path, allow_model_requests: None) -> None:
    db = tmp_path / "clin.db"
    figures = stress(kills=3, db=db, trials=2, max_steps=4, min_delay=2.0, max_delay=9.0,
                     seed=1, log_dir=tmp_path)
    assert figures["kills"] == 3
    assert figures["clean_resumes"] == figures["resumes"] == 3
    assert figures["checks"] == figures["invocations"]
    assert sum(figures["killed_in"].values()) == 3
    assert figures["runs_finished"] >= 1
    assert check_finished_runs(db, 2) == figures["runs_finished"]
    final = check_db(db)
    assert final["completed_trials"] == 2 * figures["runs_finished"]
    assert figures["orphans_killed"] == 0  # the JVM dies with its parent


@pytest.mark.parametrize("kill_at", [2, 4, 7, 9, 12])
def test_first_start_killed_during_migrations_recovers(
    kill_at: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kill while a new database gets its schema (the first seconds of the very first
    `clin run` or `clin eval`) must not brick the file: the next start finishes the schema.
    Kill points 2..7 fall in the memory's own tables, 9 and 12 in the eval tables."""
    import sqlite3

    import sqlite_utils

    from clin.trials.schema import open_memory

    def schema(db: Path) -> set[tuple[str, str]]:
        conn = sqlite3.connect(db)
        try:
            return set(conn.execute("SELECT type, name FROM sqlite_master").fetchall())
        finally:
            conn.close()

    with open_memory(tmp_path / "clean.db"):
        pass
    real_create = sqlite_utils.db.Table.create
    creates = 0

    def dying_create(self, *args, **kwargs):
        nonlocal creates
        if self.db.conn.execute("PRAGMA database_list").fetchone()[2]:  # the file, not scratch
            creates += 1
            if creates == kill_at:
                raise KeyboardInterrupt("killed while creating the schema")
        return real_create(self, *args, **kwargs)

    db = tmp_path / "clin.db"
    monkeypatch.setattr(sqlite_utils.db.Table, "create", dying_create)
    with pytest.raises(KeyboardInterrupt):
        open_memory(db)
    monkeypatch.setattr(sqlite_utils.db.Table, "create", real_create)
    with open_memory(db) as mem:
        mem.start_run(protocol="adapt")
    assert schema(db) == schema(tmp_path / "clean.db")
    check_db(db)
