"""One eval episode: N trials of a (task, variation) in its scope, resumable trial by trial.

An episode owns one ``runs`` row. Resuming it keeps the completed trials (their reflections
are already in memory, committed atomically with the trial) and re-runs only the trial that
was in flight, under the same run id.
"""

from __future__ import annotations

from collections.abc import Callable

from clin.envs.base import TextEnv
from clin.memory import Memory
from clin.memory.db import now
from pydantic import BaseModel

from clin.agent import AgentSettings, StepEvent, TrialResult, run_trial
from clin.llm.base import ChatLLM

from . import evaldb
from .protocols import ENV_NAME, EvalConfig


class EpisodeResult(BaseModel):
    key: str
    run_id: int
    ran: list[int]  # trial indexes run by this call (empty when all were done before)


def run_episode(
    *,
    mem: Memory,
    env: TextEnv,
    llm: ChatLLM,
    eval_id: int,
    cfg: EvalConfig,
    key: str,
    on_step: Callable[[StepEvent], None] | None = None,
    on_trial: Callable[[TrialResult], None] | None = None,
) -> EpisodeResult:
    ep = evaldb.episode(mem, eval_id, key)
    scope = evaldb.episode_scope(ep, cfg.agent, ENV_NAME)
    if ep.run_id is None:
        run_id = mem.start_run(
            protocol=cfg.protocol, model=llm.name, scope=scope, trials_requested=ep.trials,
            config={"eval_id": eval_id, "episode": key, "phase": ep.phase,
                    "max_steps": cfg.max_steps, "simplification": cfg.simplification},
        )
        evaldb.set_episode(mem, ep.id, run_id=run_id, status="running", started_at=now())
    else:
        run_id = ep.run_id
        if ep.status == "finished":
            return EpisodeResult(key=key, run_id=run_id, ran=[])
        mem.close_unfinished_trials(run_id, "interrupted")
        evaldb.set_episode(mem, ep.id, status="running")
    done = {r["idx"] for r in mem.completed_trials(run_id)}
    ran: list[int] = []
    settings = AgentSettings(max_steps=cfg.max_steps)
    try:
        for idx in range(1, ep.trials + 1):
            if idx in done:
                continue
            result = run_trial(env=env, llm=llm, mem=mem, run_id=run_id, scope=scope, idx=idx,
                               task=ep.task, variation=ep.variation, settings=settings,
                               on_step=on_step)
            ran.append(idx)
            if on_trial:
                on_trial(result)
    except KeyboardInterrupt:
        _stop(mem, ep.id, run_id, "interrupted", "interrupted")
        raise
    except BaseException as exc:
        _stop(mem, ep.id, run_id, "failed", f"{type(exc).__name__}: {exc}")
        raise
    mem.finish_run(run_id, "finished")
    evaldb.set_episode(mem, ep.id, status="finished")
    return EpisodeResult(key=key, run_id=run_id, ran=ran)


def _stop(mem: Memory, episode_id: int, run_id: int, status: str, error: str) -> None:
    mem.close_run(run_id, status, error)
    evaldb.set_episode(mem, episode_id, status=status)

