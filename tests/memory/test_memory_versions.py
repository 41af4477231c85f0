"""Files from other versions, and the held-out holes: a database the previous version wrote
opens and keeps working; one a newer version wrote is refused untouched; non-finite scores
are refused; a read-only query cannot run forever."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
import sqlite_utils

from clin.cli import main
from clin.memory import (
    Memory,
    NewerSchemaError,
    QueryTimeout,
    Scope,
    parse_learnings,
    run_readonly_query,
)
from clin.memory import migrations as core
from clin.trials.schema import open_memory
from tests.memory.fixtures import schema_v0

SCOPE = Scope(env="scienceworld", task="boil", variation="0")
ENDLESS = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c"


def v0_database(path: Path) -> Path:
    """A file as clin-agent before issue 11 left it: its schema (m001..m003_eval, no
    user_version), a finished trial with learnings, and a trial a crash left running."""
    db = sqlite_utils.Database(path)
    db.conn.execute("PRAGMA journal_mode = WAL")
    schema_v0.apply(db)
    ts = "2026-11-27T10:00:00.000+00:00"
    scope = {"namespace": "default", "agent": "clin", "env": "scienceworld", "task": "boil",
             "variation": "0"}
    db["runs"].insert({"id": 1, "started_at": ts, "status": "running", "protocol": "adapt",
                       **scope, "config": "{}"})
    db["trials"].insert_all([
        {"id": 1, "run_id": 1, "idx": 1, **scope, "status": "completed", "score": 10.0,
         "steps": 1, "started_at": ts, "finished_at": ts},
        {"id": 2, "run_id": 1, "idx": 2, **scope, "status": "running", "steps": 0,
         "started_at": ts},
    ])
    db["learnings"].insert({
        "id": 1, **scope, "cause": "activating the stove", "effect": "boil water",
        "relation": "necessary", "confidence": "may",
        "text": "activating the stove MAY BE NECESSARY to boil water",
        "key": "activating stove|necessary|boil water", "status": "active", "support": 1,
        "score_sum": 10.0, "first_trial_id": 1, "last_trial_id": 1, "first_seen": ts,
        "last_seen": ts,
    })
    db["learning_events"].insert({"learning_id": 1, "trial_id": 1, "event": "added",
                                  "confidence": "may", "text": "x", "score": 10.0,
                                  "created_at": ts})
    db.conn.close()
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_previous_version_database_opens_and_keeps_working(tmp_path: Path) -> None:
    db = v0_database(tmp_path / "old.db")
    with Memory(db) as mem:
        assert [x.text for x in mem.recall(SCOPE, "stove")] == [
            "activating the stove MAY BE NECESSARY to boil water"]
        assert mem.latest_unfinished_run(SCOPE, "adapt") == 1
        assert mem.reopen_run(1, 3) == 1  # trial 2 is closed as interrupted, 1 completed
        trial = mem.start_trial(1, 2, SCOPE)
        out = mem.finish_trial(trial, score=60, completed=False, stop_reason="max_steps",
                               reflection=parse_learnings(
                                   "activating the stove SHOULD BE NECESSARY to boil water"),
                               scope=SCOPE)
        assert out.promoted == 1
        names = [r[0] for r in mem.db.execute("SELECT name FROM _clin_migrations")]
        assert names == ["m001_core", "m002_views", "m003_eval", "m004_value_checks",
                         "m005_llm_calls_tokens_index", "m006_learnings_inherited"]
        assert mem.db.execute("PRAGMA user_version").fetchone()[0] == core.SCHEMA.version
    with open_memory(db) as mem:  # the eval tables it already has are recognized as such
        assert mem.db.execute("SELECT count(*) FROM task_groups").fetchone()[0] == 18
        # the six core migrations and trials.m005_eval_protocol
        assert mem.db.execute("SELECT count(*) FROM _clin_migrations").fetchone()[0] == 7


def test_eval_tables_are_created_only_by_the_eval_code(tmp_path: Path) -> None:
    with Memory(tmp_path / "lib.db") as mem:
        assert "evals" not in mem.db.table_names()
    with open_memory(tmp_path / "lib.db") as mem:
        assert {"evals", "eval_episodes", "meta_memories", "task_groups"} <= set(
            mem.db.table_names())
    with Memory(tmp_path / "lib.db") as mem:  # and the plain library still opens it
        assert mem.start_run() == 1


@pytest.mark.parametrize("newer", ["user_version", "migration", "owned_migration"])
def test_newer_database_is_refused_untouched(tmp_path: Path, newer: str) -> None:
    db = tmp_path / "new.db"
    Memory(db).close()
    conn = sqlite3.connect(db)
    if newer == "user_version":
        conn.execute(f"PRAGMA user_version = {core.SCHEMA.version + 1}")
    elif newer == "migration":
        conn.execute("INSERT INTO _clin_migrations VALUES ('m099_future', datetime('now'))")
    else:
        conn.execute("INSERT INTO _clin_migrations VALUES ('trials.m099_future', '')")
    conn.commit()
    conn.close()
    before = digest(db)
    opener = open_memory if newer == "owned_migration" else Memory
    with pytest.raises(NewerSchemaError) as info:
        opener(db)
    msg = str(info.value)
    assert f"schema version {core.SCHEMA.version}" in msg and "newer" in msg
    assert ("m099_future" in msg) if newer != "user_version" else (
        f"user_version {core.SCHEMA.version + 1}" in msg)
    assert digest(db) == before


def test_another_owners_migration_does_not_block_the_library(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    Memory(db).close()
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO _clin_migrations VALUES ('viewer.m001_pins', '')")
    with Memory(db) as mem:
        assert mem.start_run() == 1


def test_cli_refuses_a_newer_database_with_one_line(tmp_path: Path, capsys) -> None:
    db = tmp_path / "new.db"
    Memory(db).close()
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA user_version = 99")
    before = digest(db)
    (tmp_path / "in.jsonl").write_text("")
    assert main(["memory", "import", str(tmp_path / "in.jsonl"), "--db", str(db)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "newer" in err and "99" in err
    assert digest(db) == before


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_scores_are_refused(mem: Memory, bad: float) -> None:
    with pytest.raises(ValueError, match="finite"):
        mem.record_trial(SCOPE, [("look", "a room")], bad)
    run = mem.start_run(scope=SCOPE)
    trial = mem.start_trial(run, 1, SCOPE)
    with pytest.raises(ValueError, match="finite"):
        mem.finish_trial(trial, score=bad, completed=False, stop_reason="max_steps",
                         reflection=parse_learnings("a stove MAY BE NECESSARY to boil water"),
                         scope=SCOPE)
    assert mem.db.execute("SELECT count(*) FROM trials WHERE status = 'completed'"
                            ).fetchone()[0] == 0
    assert mem.db.execute("SELECT count(*) FROM learnings").fetchone()[0] == 0


def test_endless_query_is_stopped(mem: Memory) -> None:
    with pytest.raises(QueryTimeout, match="time limit of 0.2 s"):
        run_readonly_query(mem.path, ENDLESS, timeout_s=0.2)
    assert run_readonly_query(mem.path, "SELECT count(*) FROM learnings")[1] == [(0,)]


def test_cli_sql_timeout_is_one_line_and_exit_2(mem: Memory, capsys) -> None:
    assert main(["memory", "sql", ENDLESS, "--timeout", "0.2", "--db", str(mem.path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [
        "error: query stopped after its time limit of 0.2 s (raise it with --timeout SECONDS)"]
    assert main(["memory", "sql", "SELECT 1", "--timeout", "0", "--db", str(mem.path)]) == 2
