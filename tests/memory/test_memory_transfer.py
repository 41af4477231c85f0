"""clin.memory.transfer: a run done in a private memory (seeded with what it may recall) lands
in the main memory in one transaction, ids remapped, links intact; nothing half-lands."""

from __future__ import annotations

from pathlib import Path

import pytest

from clin.memory import Memory, Scope, StepRecord, parse_learnings
from clin.memory.transfer import export_run, import_run, recallable_learnings, seed_learnings

TASK = Scope(namespace="eval-1", env="scienceworld", task="find-plant")
EPISODE = TASK.model_copy(update={"variation": "3"})
SIBLING = TASK.model_copy(update={"variation": "4"})


def _run(mem: Memory, cited: int, scope: Scope = EPISODE) -> int:
    """One run of two trials at ``scope``: steps citing ``cited``, calls, reflections."""
    run_id = mem.start_run(protocol="adapt", scope=scope, trials_requested=2)
    for idx, text in ((1, "opening the door MAY BE NECESSARY to going outside"),
                      (2, "opening the door SHOULD BE NECESSARY to going outside")):
        tid = mem.start_trial(run_id, idx, scope)
        mem.add_step(tid, StepRecord(idx=1, action="open door", cited_learning_ids=[cited]))
        mem.add_llm_call(purpose="controller", model="m", prompt_tokens=3, completion_tokens=1,
                         latency_ms=1.0, run_id=run_id, trial_id=tid, step_idx=1)
        mem.finish_trial(tid, score=10.0 * idx, completed=False, stop_reason="max_steps",
                         reflection=parse_learnings(text), scope=scope)
    mem.finish_run(run_id)
    return run_id


def test_a_run_moves_between_memories(tmp_path: Path) -> None:
    with Memory(tmp_path / "main.db") as main, Memory(tmp_path / "private.db") as private:
        main.apply_reflection(TASK, parse_learnings("looking around MAY BE NECESSARY to "
                                                    "finding a plant"))
        main.apply_reflection(SIBLING, parse_learnings("x SHOULD BE NECESSARY to y"))
        _run(main, cited=1, scope=SIBLING)  # other rows exist: ids will differ
        seeds = [r for r in recallable_learnings(main, EPISODE) if r["variation"] is None]
        assert [r["task"] for r in seeds] == ["find-plant"]  # no sibling, no own scope
        seed_learnings(private, seeds)
        meta_id = seeds[0]["id"]
        assert [x.id for x in private.recall(EPISODE)] == [meta_id]

        rows = export_run(private, _run(private, cited=meta_id), seeded={meta_id})
        assert rows.counts() == {"trials": 2, "steps": 2, "llm_calls": 2, "learnings": 1,
                                 "learning_events": 2}
        before = main.db.execute("SELECT count(*) FROM learnings").fetchone()[0]
        with main.transaction() as conn:
            done = import_run(conn, rows, config={"executor": "elsewhere"})
        run_id = done.run_id
        assert run_id != rows.run["id"]
        config = main.db.execute("SELECT config FROM runs WHERE id = ?", [run_id]).fetchone()
        assert '"executor": "elsewhere"' in config[0]
        assert main.db.execute("SELECT count(*) FROM learnings").fetchone()[0] == before + 1
        trials = main.trials(run_id)
        assert [(t["trial"], t["score"], t["status"]) for t in trials] == [
            (1, 10.0, "completed"), (2, 20.0, "completed")]
        (new_lid,) = done.learning_ids.values()
        hist = main.history(new_lid)
        assert [(h["event"], h["trial_id"]) for h in hist] == [
            ("added", trials[0]["trial_id"]), ("promoted", trials[1]["trial_id"])]
        learning = main.db.execute("SELECT first_trial_id, last_trial_id, confidence FROM "
                                   "learnings WHERE id = ?", [new_lid]).fetchone()
        assert learning == (trials[0]["trial_id"], trials[1]["trial_id"], "should")
        cited = main.db.execute(
            "SELECT DISTINCT s.cited_learning_ids FROM steps s JOIN trials t ON "
            "t.id = s.trial_id WHERE t.run_id = ?", [run_id]).fetchall()
        assert cited == [(f"[{meta_id}]",)]  # a seeded learning keeps its id
        assert main.db.execute("PRAGMA foreign_key_check").fetchall() == []
        assert main.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        # the new learning is found by full-text recall like any other
        assert new_lid in [x.id for x in main.recall(EPISODE, "open the door")]


def test_an_import_that_fails_lands_nothing(tmp_path: Path) -> None:
    with Memory(tmp_path / "main.db") as main, Memory(tmp_path / "private.db") as private:
        rows = export_run(private, _run(private, cited=1))
        rows.steps[-1]["idx"] = None  # NOT NULL: fails at the last insert
        tables = ["runs", "trials", "steps", "llm_calls", "learnings", "learning_events"]
        counts = [main.db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables]
        with pytest.raises(Exception, match="NOT NULL"), main.transaction() as conn:
            import_run(conn, rows)
        assert [main.db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in tables] == counts
