"""Issue 10's eval protocol: a no-memory BASE on the same test variations as GEN, paper-style
scores (negatives as 0) beside raw ones, the authors' 1.5 x gold-path step cap, and the
paper's figures in `clin report`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clin.cli import main
from clin.envs.base import TaskInfo
from clin.errors import UserError
from clin.llm import ScriptedLLM
from clin.llm.base import Message, current_purpose
from clin.memory import Memory
from clin.trials.eval import Parts, prepare, run_eval
from clin.trials.protocols import EvalConfig, plan, step_limit
from clin.trials.report import build_report
from clin.trials.schema import open_memory
from tests.trials.eval_helpers import META_LINE, answer


def split(task: str, which: str) -> list[int]:
    return [0, 1, 2] if which == "train" else [10, 11]


def test_step_limit_fixed_and_gold() -> None:
    fixed = EvalConfig(step_budget="fixed", max_steps=40)
    assert step_limit(fixed, None) == 40 and step_limit(fixed, 90) == 40
    gold = EvalConfig(step_budget="gold1.5", max_steps=100)
    assert step_limit(gold, 16) == 24  # 1.5 x 16
    assert step_limit(gold, 11) == 17  # the authors stop once len >= 16.5
    assert step_limit(gold, 2) == 6  # their check only runs after 5 actions
    assert step_limit(gold, 90) == 100  # never above --max-steps
    with pytest.raises(ValueError):
        step_limit(gold, None)


def test_plan_base_on_the_test_variations() -> None:
    p = plan(EvalConfig(protocol="gen-env", tasks=["boil"], train_variations=1,
                        test_variations=2), "ns", split)
    assert [(e.key, e.trials, e.namespace) for e in p.base] == [
        ("base/boil/10", 1, "ns/base"), ("base/boil/11", 1, "ns/base")]
    assert [e.variation for e in p.base] == [e.variation for e in p.test]
    assert not plan(EvalConfig(protocol="gen-env", tasks=["boil"], base=False), "ns",
                    split).base
    assert not plan(EvalConfig(protocol="adapt", tasks=["boil"]), "ns", split).base


def fail_without_memory() -> ScriptedLLM:
    """Without learnings in the prompt the controller focuses on the air, which fails the task
    (-100); with learnings it looks around. So BASE and every first training trial fail."""

    def reply(messages: list[Message]) -> str:
        if current_purpose() == "controller" and "[1] " not in messages[0].content:
            return json.dumps({"used_learnings": [], "rationale": "", "action": "focus on air"})
        return answer(messages)

    # train: 2 + 3 calls, BASE: 1 (no reflection), meta: 1, test: 3 + 3
    return ScriptedLLM([reply] * 13)


@pytest.mark.scienceworld
def test_gen_env_report_base_gen_gen_adapt(sw, db_path: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture) -> None:
    cfg = EvalConfig(protocol="gen-env", tasks=["find-living-thing"], train_variations=1,
                     test_variations=1, trials=2, max_steps=2, model="scripted")
    assert cfg.step_budget == "gold1.5"
    llm = fail_without_memory()
    assert run_eval(db_path, cfg, parts=Parts(env=sw, llm=llm)).status == "finished"
    llm.assert_complete()  # exactly 13 calls: BASE wrote no reflection

    with Memory(db_path) as mem:
        eps = {r["phase"]: r for r in mem.db.query("SELECT * FROM eval_episodes")}
        assert eps["base"]["variation"] == eps["test"]["variation"]  # same test variation
        assert eps["base"]["namespace"] == "eval-1/base"
        assert eps["test"]["gold_steps"] > 2 and eps["test"]["max_steps"] == 2  # capped
        assert mem.db.execute("SELECT count(*) FROM learnings WHERE namespace = ?",
                              ["eval-1/base"]).fetchone()[0] == 0
        rep = build_report(mem)
        row = rep.rows[0]
        assert (row["base_score"], row["base_paper"]) == (-100.0, 0.0)
        assert (row["train_trial1_score"], row["train_trial1_paper"]) == (-100.0, 0.0)
        assert row["trial1_score"] >= 0 and row["trial1_paper"] == row["trial1_score"]
        assert row["steps_norm"] == pytest.approx(
            row["steps_per_trial"] / eps["test"]["gold_steps"], abs=0.01)
        paper = {r.setting: r for r in rep.paper}
        assert paper["BASE (no memory, test variations)"].paper == 48.6
        assert paper["BASE (no memory, test variations)"].ours_raw == -100.0
        assert paper["GEN zero-shot (trial 1)"].paper == 52.7
        assert paper["GEN+ADAPT (final trial)"].paper == 69.5

    out = tmp_path / "rep"
    assert main(["report", "--db", str(db_path), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    for text in ("BASE", "GEN", "GEN+ADAPT", "48.6", "52.7", "69.5", "39.4", "-100.0",
                 "counts", "1.5 x gold"):
        assert text in printed, text
    md = (out / "eval1-report.md").read_text()
    assert "| BASE (no memory) | GEN (zero-shot) | GEN+ADAPT (final) | BASE (raw) |" in md
    assert "| GEN zero-shot (trial 1) | " in md and "| 52.7 |" in md
    assert "counts as 0" in md


def test_step_budget_needs_gold_paths(db_path: Path) -> None:
    class NoGold:
        name = "tiny"

        def tasks(self) -> list[TaskInfo]:
            return [TaskInfo(name="boil", variations=20)]

        def split(self, task: str, which: str) -> list[int]:
            return split(task, which)

    with open_memory(db_path) as mem, pytest.raises(UserError, match="--step-budget fixed"):
        prepare(mem, NoGold(), EvalConfig(tasks=["boil"]), None)  # type: ignore[arg-type]
    with open_memory(db_path) as mem:
        _, the_plan = prepare(mem, NoGold(), EvalConfig(tasks=["boil"], step_budget="fixed"),
                                None)  # type: ignore[arg-type]
        assert the_plan.test


def test_cli_rejects_an_unknown_step_budget(capsys: pytest.CaptureFixture) -> None:
    assert main(["eval", "--step-budget", "2x", "--model", "scripted"]) == 2
    assert "unknown --step-budget '2x'" in capsys.readouterr().err


CONTRA = "teleporting to the outside DOES NOT CONTRIBUTE to finding any living thing"


def contradicts_the_meta_memory() -> ScriptedLLM:
    """Training reflections write REFLECTION_LINE; a reflection whose memory holds the
    inherited meta-learning (a test episode's) contradicts it."""

    def reply(messages: list[Message]) -> str:
        if current_purpose() == "reflection" and META_LINE in messages[-1].content:
            return CONTRA
        return answer(messages)

    return ScriptedLLM([reply] * 9)  # train 2 x (1 + 1), meta 1, test 2 x (1 + 1)


def test_inherited_learning_contradicted_in_a_test_episode(tiny, db_path: Path) -> None:
    cfg = EvalConfig(protocol="gen-env", tasks=["find-living-thing"], train_variations=1,
                     test_variations=1, trials=2, max_steps=1, model="scripted", base=False,
                     step_budget="fixed")
    llm = contradicts_the_meta_memory()
    assert run_eval(db_path, cfg, parts=Parts(env=tiny, llm=llm)).status == "finished"
    llm.assert_complete()
    with Memory(db_path) as mem:
        (meta,) = mem.db.query("SELECT l.* FROM meta_learnings ml JOIN learnings l "
                               "ON l.id = ml.learning_id")
        assert (meta["text"], meta["status"], meta["confidence"]) == (META_LINE, "active", "may")
        assert [e["event"] for e in mem.history(meta["id"])] == ["added"]  # never revised
        (copy,) = mem.db.query("SELECT * FROM learnings WHERE inherited_from = ?", [meta["id"]])
        assert (copy["variation"], copy["status"]) == (
            str(mem.db.execute("SELECT variation FROM eval_episodes WHERE phase = 'test'")
                .fetchone()[0]), "retired")
        t1, t2 = [r[0] for r in mem.db.execute(
            "SELECT trial_id FROM v_eval_trials WHERE phase = 'test' ORDER BY trial")]
        assert [(e["event"], e["trial_id"]) for e in mem.history(copy["id"])] == [
            ("inherited", None), ("retired", t1)]

        def prompt(trial_id: int) -> str:
            return mem.db.execute("SELECT prompt FROM llm_calls WHERE trial_id = ? AND "
                                  "purpose = 'controller' LIMIT 1", [trial_id]).fetchone()[0]

        first = prompt(t1)
        assert f"From other variations of this task (they may not hold in this one):\n[1] " \
               f"{META_LINE}" in first
        second = prompt(t2)
        assert META_LINE not in second and CONTRA in second  # revised for this episode
        assert [r["text"] for r in mem.db.query("SELECT text FROM v_meta_memories")] == [
            META_LINE]


def per_source_meta() -> ScriptedLLM:
    """The GEN-TASK meta writer answers three lines naming the earlier task it was shown."""

    def reply(messages: list[Message]) -> str:
        if current_purpose() == "meta":
            source = messages[-1].content.split("EARLIER TASK: ", 1)[1].split("\n", 1)[0]
            return "\n".join(f"going to room {n} of {source} MAY BE NECESSARY to finding "
                             f"object {n}" for n in (1, 2, 3))
        return answer(messages)

    return ScriptedLLM([reply] * 11)  # train 3 x 2, BASE 1, meta 2 (one per source), test 2


def test_gen_task_meta_memory_per_source_task_within_budget(tiny, db_path: Path) -> None:
    cfg = EvalConfig(protocol="gen-task", tasks=["find-plant"],
                     source_tasks=["find-living-thing", "boil"], train_variations=1,
                     test_variations=1, trials=1, max_steps=1, model="scripted",
                     step_budget="fixed", meta_tokens_per_task=30)
    llm = per_source_meta()
    assert run_eval(db_path, cfg, parts=Parts(env=tiny, llm=llm)).status == "finished"
    llm.assert_complete()
    with Memory(db_path) as mem:
        src = {r["source_task"]: r["llm_call_id"] for r in mem.db.query(
            "SELECT source_task, llm_call_id FROM meta_sources")}
        assert set(src) == {"find-living-thing", "boil"}
        assert len(set(src.values())) == 2  # one call per source task
        for task, call in src.items():
            prompt = mem.db.execute("SELECT prompt FROM llm_calls WHERE id = ?",
                                    [call]).fetchone()[0]
            assert f"EARLIER TASK: {task}" in prompt and "At most 2 lines" in prompt
            other = ({"find-living-thing", "boil"} - {task}).pop()
            assert f"task {other}," not in prompt  # only its own task's episodes
        texts = sorted(r["text"] for r in mem.db.query("SELECT text FROM v_meta_memories"))
        # 30 tokens per source task: the first line of each answer fits, the second does not
        assert texts == [f"going to room 1 of {t} MAY BE NECESSARY to finding object 1"
                         for t in ("boil", "find-living-thing")]
        rep = build_report(mem)
        calls = mem.db.execute("SELECT sum(prompt_tokens + completion_tokens) FROM llm_calls "
                               "WHERE purpose = 'meta'").fetchone()[0]
        assert rep.meta_tokens == calls > 0
