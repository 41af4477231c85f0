"""A small real database for the viewer tests: two trials of grow-plant on the real
ScienceWorld with a scripted LLM; trial 2 cites the learning trial 1's reflection wrote."""

from __future__ import annotations

from pathlib import Path

from clin.memory import Memory
from clin.trials.runner import AdaptConfig, RunSummary, run_adapt

from clin.agent import AgentSettings
from clin.llm import ScriptedLLM

from .conftest import proposal

LEARNING = "opening the door to the kitchen SHOULD BE NECESSARY to finding the seeds"


def make_run_db(path: Path, env: object) -> RunSummary:
    llm = ScriptedLLM([
        proposal("open door to kitchen", why="the seeds may be in the kitchen"),
        proposal("walk to the kitchen"),  # paraphrase: grounded (normalized)
        proposal("look around"),
        f"{LEARNING}\nlooking around the kitchen MAY BE NECESSARY to finding the seeds",
        proposal("open door to kitchen", used=[1], why="learning 1 says so"),
        proposal("go to kitchen", used=[1, 2]),
        proposal("inventory"),
        LEARNING,
    ])
    cfg = AdaptConfig(task="grow-plant", variation=0, trials=2,
                      settings=AgentSettings(max_steps=3))
    with Memory(path) as mem:
        summary = run_adapt(cfg, env=env, llm=llm, mem=mem)
    llm.assert_complete()
    return summary
