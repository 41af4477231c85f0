"""GEN-ENV and GEN-TASK end to end on TinyWorld: training episodes -> meta-memory at the task scope
-> the test variation's first controller prompt shows it."""

from __future__ import annotations

from pathlib import Path

import pytest

from clin.cli import main
from clin.errors import UserError
from clin.llm import ScriptedLLM
from clin.memory import Memory
from clin.trials.eval import Execution, Parts, run_eval
from clin.trials.protocols import EvalConfig
from tests.trials.eval_helpers import META_LINE, REFLECTION_LINE, answer, scripted

STEPS = 2
PER_TRIAL = STEPS + 1  # controller calls + one reflection


def test_gen_env_trial1_prompt_contains_meta_memory(tiny, db_path: Path) -> None:
    cfg = EvalConfig(protocol="gen-env", tasks=["find-living-thing"], train_variations=2,
                     test_variations=1, trials=2, max_steps=STEPS, model="scripted",
                     step_budget="fixed")  # TinyWorld has no gold paths
    # train, BASE (one trial, no reflection), meta, test
    llm = scripted(2 * 2 * PER_TRIAL + STEPS + 1 + 2 * PER_TRIAL)
    summary = run_eval(db_path, cfg, parts=Parts(env=tiny, llm=llm))
    llm.assert_complete()
    assert summary.status == "finished"
    assert (summary.trials_done, summary.trials_total, summary.metas) == (7, 7, 1)

    with Memory(db_path) as mem:
        meta = list(mem.db.query("SELECT * FROM meta_memories"))
        assert len(meta) == 1 and meta[0]["status"] == "done"
        assert meta[0]["task"] == "find-living-thing" and meta[0]["variation"] is None
        assert meta[0]["learnings_written"] == 1 and meta[0]["learnings_rejected"] == 1
        # provenance: one best trial per training episode
        src = list(mem.db.query(
            "SELECT s.source_trial_id, e.phase, t.run_id = e.run_id AS same_run "
            "FROM meta_sources s JOIN eval_episodes e ON e.id = s.source_episode_id "
            "JOIN trials t ON t.id = s.source_trial_id WHERE s.meta_id = ?", [meta[0]["id"]]))
        assert len(src) == 2 and {r["phase"] for r in src} == {"train"}
        assert all(r["same_run"] for r in src)
        # the meta prompt summarized what the training reflections wrote
        call = mem.db.execute("SELECT prompt FROM llm_calls WHERE id = ?",
                              [meta[0]["llm_call_id"]]).fetchone()[0]
        assert REFLECTION_LINE in call and "variation" in call
        # test trial 1: its first controller prompt shows the meta-memory (ancestor scope)
        t1 = mem.db.execute(
            "SELECT trial_id FROM v_eval_trials WHERE phase = 'test' AND trial = 1").fetchone()[0]
        prompt = mem.db.execute(
            "SELECT prompt FROM llm_calls WHERE trial_id = ? AND purpose = 'controller' "
            "ORDER BY step_idx LIMIT 1", [t1]).fetchone()[0]
        assert META_LINE in prompt
        # ...and no training variation's own learning leaked into the test variation
        assert REFLECTION_LINE not in prompt
        view = list(mem.db.query("SELECT * FROM v_meta_memories"))
        assert [r["text"] for r in view] == [META_LINE]


def test_gen_task_meta_memory_reaches_the_new_task(tiny, db_path: Path) -> None:
    cfg = EvalConfig(protocol="gen-task", tasks=["find-living-thing", "find-plant"],
                     train_variations=1, test_variations=1, trials=1, max_steps=STEPS,
                     model="scripted", step_budget="fixed")
    # train, BASE per target, one meta per target, test
    llm = scripted(2 * PER_TRIAL + 2 * STEPS + 2 + 2 * PER_TRIAL)
    assert run_eval(db_path, cfg, parts=Parts(env=tiny, llm=llm)).status == "finished"
    llm.assert_complete()
    with Memory(db_path) as mem:
        metas = {r["key"]: r for r in mem.db.query("SELECT * FROM meta_memories")}
        meta = metas["gen-task/find-plant"]
        # the scope's env is the env played (TinyWorld), not a fixed name
        assert (meta["env"], meta["task"], meta["namespace"]) == (
            "tiny", None, "eval-1/to-find-plant")
        envs = {r["env"] for r in mem.db.query("SELECT env FROM learnings")}
        assert envs == {"tiny"}
        src = [r["source_task"] for r in mem.db.query(
            "SELECT source_task FROM meta_sources WHERE meta_id = ?", [meta["id"]])]
        assert src == ["find-living-thing"]  # the other task fed it
        prompt = mem.db.execute(
            "SELECT c.prompt FROM v_eval_trials v JOIN llm_calls c ON c.trial_id = v.trial_id "
            "WHERE v.phase = 'test' AND v.task = 'find-plant' AND c.purpose = 'controller' "
            "ORDER BY c.id LIMIT 1").fetchone()[0]
        assert f"From other tasks (they may not apply to this one):\n[1] {META_LINE}" in prompt


def test_gen_task_across_environments_with_base(tiny, twx, db_path: Path, capsys) -> None:
    """Learn on one environment's tasks, test on another's: the training episodes run in
    the training env (their learnings keep its name), the meta-memory is bound to no env and
    reaches the test episodes labelled "from another environment", BASE runs the same test
    episodes without memory, and the report shows both."""
    cfg = EvalConfig(protocol="gen-task", env="textworld-express", train_env="tiny",
                     tasks=["coin"], source_tasks=["find-living-thing"], train_variations=1,
                     test_variations=1, trials=1, max_steps=STEPS, model="scripted",
                     step_budget="fixed")
    llm = ScriptedLLM([answer] * 100)
    summary = run_eval(db_path, cfg, parts=Parts(env=twx, train_env=tiny, llm=llm))
    assert summary.status == "finished"
    with Memory(db_path) as mem:
        eps = {(r["phase"], r["task"], r["variation"]) for r in mem.db.query(
            "SELECT phase, task, variation FROM eval_episodes")}
        assert eps == {("train", "find-living-thing", 0), ("base", "coin", 2000),
                       ("test", "coin", 2000)}
        runs = {(r["phase"], r["env"]) for r in mem.db.query(
            "SELECT e.phase, r.env FROM eval_episodes e JOIN runs r ON r.id = e.run_id")}
        assert runs == {("train", "tiny"), ("base", "textworld-express"),
                        ("test", "textworld-express")}
        meta = next(iter(mem.db.query("SELECT * FROM meta_memories")))
        assert (meta["env"], meta["task"]) == (None, None)
        prompt = mem.db.execute(
            "SELECT c.prompt FROM v_eval_trials v JOIN llm_calls c ON c.trial_id = v.trial_id "
            "WHERE v.phase = 'test' AND c.purpose = 'controller' ORDER BY c.id LIMIT 1"
        ).fetchone()[0]
    assert f"From another environment (they may not apply in this one):\n[1] {META_LINE}" \
        in prompt
    assert "You are an agent in TextWorld Express" in prompt
    out = db_path.parent / "report"
    assert main(["report", "--db", str(db_path), "--out", str(out)]) == 0
    report = (out / "eval1-report.md").read_text()
    assert "trained in tiny, tested in textworld-express" in report.splitlines()[0]
    assert "| coin | other | 1 | 0.0 | 0.0 | 0.0 |" in report  # BASE, GEN, GEN+ADAPT
    assert "CLIN paper" not in report  # its figures are ScienceWorld's


def test_cross_environment_needs_gen_task_with_source_tasks(tiny, twx, db_path: Path) -> None:
    cfg = EvalConfig(protocol="gen-env", env="textworld-express", train_env="tiny",
                     tasks=["coin"], model="scripted", step_budget="fixed")
    with pytest.raises(UserError, match="--train-env needs --protocol gen-task"):
        run_eval(db_path, cfg, parts=Parts(env=twx, train_env=tiny, llm=ScriptedLLM([])))
    cfg = cfg.model_copy(update={"protocol": "gen-task", "source_tasks": ["coin"]})
    with pytest.raises(UserError, match="unknown task"):
        run_eval(db_path, cfg, parts=Parts(env=twx, train_env=tiny, llm=ScriptedLLM([])))


@pytest.mark.textworld  # the workers start their own TextWorldExpress JVM
def test_gen_task_across_environments_on_two_workers(db_path: Path) -> None:
    """Worker processes make the training env for the training episodes; Ray refuses."""
    from tests.trials.eval_helpers import roomy_llm

    cfg = EvalConfig(protocol="gen-task", env="textworld-express", train_env="tiny",
                     tasks=["coin"], source_tasks=["find-living-thing", "find-plant"],
                     train_variations=1, test_variations=1, trials=1, max_steps=STEPS,
                     model="scripted", step_budget="fixed")
    summary = run_eval(db_path, cfg, execution=Execution(workers=2),
                       parts=Parts(llm_factory=roomy_llm))
    assert (summary.status, summary.trials_done, summary.metas) == ("finished", 4, 1)
    with Memory(db_path) as mem:
        runs = sorted((r["phase"], r["env"]) for r in mem.db.query(
            "SELECT e.phase, r.env FROM eval_episodes e JOIN runs r ON r.id = e.run_id"))
    assert runs == [("base", "textworld-express"), ("test", "textworld-express"),
                    ("train", "tiny"), ("train", "tiny")]
    with pytest.raises(UserError, match="runs with --executor local"):
        run_eval(db_path.with_name("ray.db"), cfg, execution=Execution(executor="ray"),
                 parts=Parts(llm_factory=roomy_llm))
