import sqlite3

import pytest

from clin.memory import (
    DatabaseError,
    Memory,
    Scope,
    StepRecord,
    migrations,
    parse_learnings,
    render,
)
from clin.memory import db as memdb

SCOPE = Scope(env="scienceworld", task="grow-plant", variation=0)


def _trial(mem: Memory, run_id: int, idx: int, text: str, score: float, scope: Scope = SCOPE):
    tid = mem.start_trial(run_id, idx, scope)
    mem.add_step(tid, StepRecord(idx=1, action="look around", observation="a room"))
    return tid, mem.finish_trial(tid, score=score, completed=False, stop_reason="step-limit",
                                 reflection=parse_learnings(text), scope=scope)


def test_trial_is_running_until_finish_commits(mem: Memory) -> None:
    run_id = mem.start_run(scope=SCOPE)
    tid = mem.start_trial(run_id, 1, SCOPE)
    mem.add_step(tid, StepRecord(idx=1, action="look around", observation="x"))
    row = mem.db["trials"].get(tid)
    assert row["status"] == "running" and row["score"] is None
    mem.finish_trial(tid, score=10, completed=False, stop_reason="step-limit")
    row = mem.db["trials"].get(tid)
    assert row["status"] == "completed" and row["score"] == 10 and row["steps"] == 1


def test_failed_reflection_merge_rolls_back_the_whole_trial(mem: Memory) -> None:
    run_id = mem.start_run(scope=SCOPE)
    tid = mem.start_trial(run_id, 1, SCOPE)
    with pytest.raises(ValueError):
        mem.finish_trial(tid, score=50, completed=False, stop_reason="x",
                         reflection=parse_learnings("a SHOULD BE NECESSARY to b"), scope=None)
    assert mem.db["trials"].get(tid)["status"] == "running"
    assert mem.db["learnings"].count == 0


def test_learning_dynamics_support_promotion_demotion_retirement(mem: Memory) -> None:
    run_id = mem.start_run(scope=SCOPE)
    water = "watering the pot MAY BE NECESSARY to growing the plant"
    walk = "going to the workshop SHOULD BE NECESSARY to growing the plant"
    _trial(mem, run_id, 1, f"{water}\n{walk}", 60)
    _trial(mem, run_id, 2, water, 70)  # walk dropped once: SHOULD -> MAY
    rows = {r["cause"]: r for r in mem.db.query("SELECT * FROM learnings")}
    assert rows["watering the pot"]["support"] == 2
    assert rows["going to the workshop"]["confidence"] == "may"
    _, out = _trial(mem, run_id, 3, water, 80)  # third support, mean >= 50: promoted
    assert out.promoted == 1 and out.retired == 1  # walk dropped again: retired
    rows = {r["cause"]: r for r in mem.db.query("SELECT * FROM learnings")}
    assert rows["watering the pot"]["confidence"] == "should"
    assert rows["going to the workshop"]["status"] == "retired"
    events = [r["event"] for r in mem.db.query(
        "SELECT event FROM v_learning_history WHERE learning_id = ? ORDER BY event_id",
        [rows["going to the workshop"]["id"]])]
    assert events == ["added", "demoted", "retired"]
    assert [x.cause for x in mem.recall(SCOPE)] == ["watering the pot"]


def test_contradiction_retires_the_old_relation(mem: Memory) -> None:
    run_id = mem.start_run(scope=SCOPE)
    _trial(mem, run_id, 1, "using the oven SHOULD BE NECESSARY to growing the plant", 0)
    _trial(mem, run_id, 2, "using the oven DOES NOT CONTRIBUTE to growing the plant", 0)
    active = [x.text for x in mem.recall(SCOPE)]
    assert active == ["using the oven DOES NOT CONTRIBUTE to growing the plant"]


def test_recall_sees_ancestors_never_siblings(mem: Memory) -> None:
    run_id = mem.start_run(scope=SCOPE)
    sibling = SCOPE.model_copy(update={"variation": "1"})
    task_level = SCOPE.model_copy(update={"variation": None})
    other_task = SCOPE.model_copy(update={"task": "boil", "variation": None})
    _trial(mem, run_id, 1, "alpha step SHOULD BE NECESSARY to goal one", 0, SCOPE)
    _trial(mem, run_id, 2, "beta step SHOULD BE NECESSARY to goal two", 0, sibling)
    _trial(mem, run_id, 3, "gamma step MAY BE NECESSARY to goal three", 0, task_level)
    _trial(mem, run_id, 4, "delta step MAY BE NECESSARY to goal four", 0, other_task)
    got = [x.cause for x in mem.recall(SCOPE)]
    assert got == ["alpha step", "gamma step"]  # most specific first
    assert [x.cause for x in mem.recall(SCOPE, query="three")][0] == "alpha step"


def test_render_numbers_and_budget() -> None:
    from clin.memory import Learning

    ls = [Learning(id=10 + i, text=f"thing {i} SHOULD BE NECESSARY to goal", cause="c",
                   effect="e", relation="necessary", confidence="should") for i in range(50)]
    r = render(ls, budget_tokens=40)
    assert r.text.startswith("[1] thing 0")
    assert 0 < len(r.ids) < 50
    assert r.resolve([1, 2, 999]) == [10, 11]


def test_non_sqlite_file_is_refused_untouched(tmp_path) -> None:
    p = tmp_path / "notes.db"
    p.write_bytes(b"hello, not a database")
    with pytest.raises(DatabaseError, match="not a SQLite database"):
        Memory(p)
    assert p.read_bytes() == b"hello, not a database"


def test_wal_and_foreign_keys_are_on(mem: Memory) -> None:
    assert mem.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert mem.db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    with pytest.raises(sqlite3.IntegrityError):
        mem.start_trial(999, 1, SCOPE)


def test_migrations_apply_once(db_path) -> None:
    with Memory(db_path) as m:
        m.start_run(protocol="adapt")
        first = [(r["name"], r["applied_at"]) for r in m.db["_clin_migrations"].rows]
    assert [name for name, _ in first] == migrations.SCHEMA.names
    with Memory(db_path) as m:
        # nothing is pending on an up-to-date file
        assert memdb.apply(m.db, [migrations.SCHEMA]) == []
        again = [(r["name"], r["applied_at"]) for r in m.db["_clin_migrations"].rows]
        assert m.db.execute("SELECT count(*) FROM runs").fetchone()[0] == 1  # data kept
    assert again == first
