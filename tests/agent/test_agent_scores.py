"""The agent's finish-trial path refuses a non-finite score from an environment: the trial
is not stored as completed with a NaN that would poison every mean."""

from __future__ import annotations

import math

import pytest

from clin.agent import AgentSettings, run_trial
from clin.envs.base import DEFAULT_PROFILE, Observation, TaskInfo
from clin.llm import ScriptedLLM
from clin.memory import Memory, Scope
from tests.conftest import proposal


class BrokenScoreEnv:
    """A one-room env whose score turns into ``bad`` after the first step."""

    name = "broken"
    profile = DEFAULT_PROFILE

    def __init__(self, bad: float) -> None:
        self.bad = bad

    def tasks(self) -> list[TaskInfo]:
        return [TaskInfo(name="t", variations=1)]

    def reset(self, task: str, variation: int) -> Observation:
        return Observation(text="A room.", valid_actions=["look around"])

    def step(self, action: str) -> Observation:
        return Observation(text="Still a room.", score=self.bad, done=True,
                           valid_actions=["look around"])

    def task_description(self) -> str:
        return "Look around."

    def close(self) -> None:
        pass


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_agent_refuses_a_non_finite_score(mem: Memory, bad: float) -> None:
    scope = Scope(env="broken", task="t", variation="0")
    run = mem.start_run(scope=scope)
    with pytest.raises(ValueError, match="finite"):
        run_trial(env=BrokenScoreEnv(bad), llm=ScriptedLLM([proposal("look around")]),
                  mem=mem, run_id=run, scope=scope, idx=1, task="t", variation=0,
                  settings=AgentSettings(max_steps=2, reflect=False))
    assert mem.db.execute("SELECT status FROM trials").fetchall() == [("running",)]
