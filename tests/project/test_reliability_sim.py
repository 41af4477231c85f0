"""Simulator crash: SIGKILL the ScienceWorld JVM mid-trial. The adapter restarts it and
replays the episode, so the trial ends with the same score as an undisturbed run; when it
cannot restart, the trial is marked interrupted (never scored) and a resume re-runs it."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from clin.agent import AgentSettings, run_trial
from clin.envs.base import EnvCrashed
from clin.envs.scienceworld import ScienceWorld
from clin.llm import Message, ScriptedLLM
from clin.memory import Memory
from clin.trials.runner import AdaptConfig, run_adapt, scope_for
from tests.conftest import proposal
from tests.support.rel_helpers import check_trials_whole, rows

pytestmark = pytest.mark.scienceworld
TASK, VARIATION = "find-living-thing", 0
REFLECTION = "going to the outside MAY BE NECESSARY to finding a living thing"
KILL_AT = 6  # the step whose proposal is answered after the JVM was killed


# A solution of find-living-thing v0 (the world of a plain load is deterministic; the gold
# path is not used: generating it draws from the simulator's random state).
ACTIONS = [
    "open door to greenhouse", "go to greenhouse", "open door to outside", "go to outside",
    "look around", "focus on dove", "pick up dove", "open door to kitchen", "go to kitchen",
    "move dove to red box",
]


@pytest.fixture
def gold() -> list[str]:
    return list(ACTIONS)


def _kill_jvm(env: ScienceWorld) -> int:
    pid = env.java_pid
    assert pid is not None
    proc = env._env._gateway.java_process
    os.kill(pid, signal.SIGKILL)
    proc.wait(timeout=10)
    return pid


def _script(actions: list[str], kill: ScienceWorld | None = None) -> list:
    answers: list = [proposal(a) for a in actions]
    if kill is not None:
        def killing(_: list[Message], a: str = actions[KILL_AT - 1]) -> str:
            _kill_jvm(kill)
            return proposal(a)
        answers[KILL_AT - 1] = killing
    return [*answers, REFLECTION]


def _trial(env, mem: Memory, actions: list[str], kill: ScienceWorld | None = None):
    cfg = AdaptConfig(task=TASK, variation=VARIATION, trials=1)
    scope = scope_for(env, cfg)
    run_id = mem.start_run(protocol="adapt", scope=scope, trials_requested=1)
    llm = ScriptedLLM(_script(actions, kill))
    result = run_trial(env=env, llm=llm, mem=mem, run_id=run_id, scope=scope, idx=1,
                       task=TASK, variation=VARIATION,
                       settings=AgentSettings(max_steps=len(actions) + 2))
    llm.assert_complete()
    return result


def _step_scores(db: Path, trial_id: int) -> list[tuple]:
    return rows(db, "SELECT idx, action, score, done FROM steps WHERE trial_id = ? ORDER BY idx",
                (trial_id,))


def test_killed_jvm_is_restarted_and_replayed_with_the_same_score(
    sw, gold: list[str], tmp_path: Path
) -> None:
    ref_db, crash_db = tmp_path / "ref.db", tmp_path / "crash.db"
    with Memory(ref_db) as mem:
        reference = _trial(sw, mem, gold)
    assert reference.score == 100 and reference.completed  # the gold path solves the task

    with ScienceWorld("easy") as env, Memory(crash_db) as mem:
        env.reset(TASK, VARIATION)
        first_pid = env.java_pid
        crashed = _trial(env, mem, gold, kill=env)
        assert env.restarts == 1
        assert env.java_pid != first_pid
    assert crashed.score == reference.score and crashed.completed
    assert crashed.steps == reference.steps
    assert _step_scores(crash_db, crashed.trial_id) == _step_scores(ref_db, reference.trial_id)
    check_trials_whole(crash_db)


def test_unrecoverable_crash_is_interrupted_never_scored_then_resumed(
    sw, gold: list[str], tmp_path: Path
) -> None:
    db = tmp_path / "clin.db"
    cfg = AdaptConfig(task=TASK, variation=VARIATION, trials=2,
                      settings=AgentSettings(max_steps=len(gold) + 2))
    with ScienceWorld("easy", max_restarts=0) as env, Memory(db) as mem:
        env.reset(TASK, VARIATION)
        llm = ScriptedLLM(_script(gold, kill=env))
        with pytest.raises(EnvCrashed):
            run_adapt(cfg, env=env, llm=llm, mem=mem)
    assert rows(db, "SELECT status FROM runs") == [("interrupted",)]
    assert rows(db, "SELECT idx, status, score, completed FROM trials") == [
        (1, "interrupted", None, None)]
    assert rows(db, "SELECT count(*) FROM learnings") == [(0,)]
    check_trials_whole(db)

    with Memory(db) as mem:  # a resume re-runs the interrupted trial from its start
        llm = ScriptedLLM(_script(gold) * 2)
        summary = run_adapt(cfg, env=sw, llm=llm, mem=mem, resume=True)
    assert [r.score for r in summary.trials] == [100, 100]
    assert rows(db, "SELECT idx, status, score FROM trials ORDER BY id") == [
        (1, "interrupted", None), (1, "completed", 100), (2, "completed", 100)]
    assert rows(db, "SELECT status FROM runs") == [("finished",)]
    check_trials_whole(db)


def test_replay_that_diverges_is_an_interruption_not_a_score() -> None:
    with ScienceWorld("easy") as env:
        env.reset(TASK, VARIATION)
        env.step("open door to greenhouse")
        env.step("go to greenhouse")
        env._replay.scores[-1] += 1  # as if the world rebuilt after the crash were another one
        _kill_jvm(env)
        with pytest.raises(EnvCrashed, match="diverged at action 2"):
            env.step("look around")
