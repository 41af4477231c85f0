"""Trial protocols. ADAPT: N trials of one (task, variation), memory carried trial to trial."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from memory import Memory, Scope
from pydantic import BaseModel

from clin.agent import AgentSettings, StepEvent, TrialResult, run_trial
from clin.llm.base import ChatLLM
from envs.base import EnvCrashed, TextEnv


class AdaptConfig(BaseModel):
    task: str
    variation: int = 0
    trials: int = 5
    namespace: str = "default"
    agent: str = "clin"
    settings: AgentSettings = AgentSettings()


class RunSummary(BaseModel):
    run_id: int
    model: str
    trials: list[TrialResult]


def scope_for(env: TextEnv, cfg: AdaptConfig) -> Scope:
    return Scope(
        namespace=cfg.namespace, agent=cfg.agent, env=env.name, task=cfg.task,
        variation=cfg.variation,
    )


def run_adapt(
    cfg: AdaptConfig,
    *,
    env: TextEnv,
    llm: ChatLLM,
    mem: Memory,
    on_step: Callable[[StepEvent], None] | None = None,
    on_trial: Callable[[TrialResult], None] | None = None,
    run_config: dict[str, Any] | None = None,
) -> RunSummary:
    """Run ``cfg.trials`` trials; each trial's reflection conditions the next.

    The run row is closed as ``finished``, ``failed`` (an error) or ``interrupted``
    (Ctrl-C); a trial that did not reach its final transaction stays visibly unfinished.
    """
    scope = scope_for(env, cfg)
    run_id = mem.start_run(
        protocol="adapt",
        model=llm.name,
        scope=scope,
        trials_requested=cfg.trials,
        config={**cfg.model_dump(), **(run_config or {})},
    )
    results: list[TrialResult] = []
    try:
        for idx in range(1, cfg.trials + 1):
            result = run_trial(
                env=env, llm=llm, mem=mem, run_id=run_id, scope=scope, idx=idx,
                task=cfg.task, variation=cfg.variation, settings=cfg.settings,
                on_step=on_step,
            )
            results.append(result)
            if on_trial:
                on_trial(result)
    except KeyboardInterrupt:
        _close_unfinished(mem, run_id, "interrupted")
        raise
    except EnvCrashed as exc:
        _close_unfinished(mem, run_id, "interrupted", str(exc))
        raise
    except BaseException as exc:
        _close_unfinished(mem, run_id, "failed", f"{type(exc).__name__}: {exc}")
        raise
    mem.finish_run(run_id, "finished")
    return RunSummary(run_id=run_id, model=llm.name, trials=results)


def _close_unfinished(mem: Memory, run_id: int, status: str, error: str | None = None) -> None:
    for row in mem.db.query(
        "SELECT id FROM trials WHERE run_id = ? AND status = 'running'", [run_id]
    ):
        mem.mark_trial(row["id"], status, error or status)
    mem.finish_run(run_id, status, error)
