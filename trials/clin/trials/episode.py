"""One eval episode: N trials of a (task, variation) in its scope, resumable trial by trial.

An episode owns one ``runs`` row and runs through the one ADAPT loop
(:func:`clin.trials.runner.adapt_episode`, as ``clin run`` does). Resuming it keeps the
completed trials (their reflections are already in memory, committed atomically with the
trial) and re-runs only the trial that was in flight, under the same run id; the episode's
row ends with its run's status.
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel

from clin.agent import AgentSettings, StepEvent, TrialResult
from clin.envs.base import HasGoldPaths, TextEnv
from clin.errors import UserError
from clin.llm.base import ChatLLM
from clin.memory import Memory
from clin.memory.db import now

from . import evaldb, runner
from .protocols import EvalConfig, step_limit


class EpisodeResult(BaseModel):
    key: str
    run_id: int
    ran: list[int]  # trial indexes run by this call (empty when all were done before)


def run_episode(
    *, mem: Memory, env: TextEnv, llm: ChatLLM, eval_id: int, cfg: EvalConfig, key: str,
    on_step: Callable[[StepEvent], None] | None = None,
    on_trial: Callable[[TrialResult], None] | None = None,
) -> EpisodeResult:
    ep = evaldb.episode(mem, eval_id, key)
    scope = ep.scope(cfg.agent, env.name)
    resumed = ep.run_id is not None
    if ep.run_id is None:
        gold = episode_gold_steps(env, ep.task, ep.variation, required=cfg.step_budget != "fixed")
        max_steps = step_limit(cfg, gold)
        run_id = mem.start_run(
            protocol=cfg.protocol, model=llm.name, scope=scope, trials_requested=ep.trials,
            config={"eval_id": eval_id, "episode": key, "phase": ep.phase,
                    "max_steps": max_steps, "step_budget": cfg.step_budget,
                    "gold_steps": gold, "simplification": cfg.simplification,
                    "env": env.name},
        )
        evaldb.set_episode(mem, ep.id, run_id=run_id, status="running", started_at=now(),
                           gold_steps=gold, max_steps=max_steps)
    else:
        run_id, max_steps = ep.run_id, ep.max_steps or cfg.max_steps
        if ep.status == "finished":
            return EpisodeResult(key=key, run_id=run_id, ran=[])
        evaldb.set_episode(mem, ep.id, status="running")
    if ep.phase == "test":
        # The meta-memory becomes this episode's own, revisable copy (idempotent on resume).
        mem.inherit(scope)
    # BASE is the no-memory reference: it neither reads (own namespace) nor writes memory.
    settings = AgentSettings(max_steps=max_steps, reflect=ep.phase != "base")
    results = runner.adapt_episode(
        runner.OpenRun(run_id, scope, ep.task, ep.variation, ep.trials, resumed), mem=mem,
        env=env, llm=llm, settings=settings, on_step=on_step, on_trial=on_trial,
        on_close=lambda status: evaldb.set_episode(mem, ep.id, status=status))
    return EpisodeResult(key=key, run_id=run_id, ran=[r.idx for r in results])


def episode_gold_steps(env: TextEnv, task: str, variation: int, *, required: bool) -> int | None:
    """The simulator's gold path length for the episode (for the ``gold1.5`` budget and for
    steps normalized by it); None when the environment has no gold paths and none is needed."""
    if not isinstance(env, HasGoldPaths):
        if required:
            raise UserError(f"environment {env.name} has no gold paths: "
                            "use --step-budget fixed")
        return None
    return int(env.gold_length(task, variation))
