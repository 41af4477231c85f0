"""Trial protocols. ADAPT: N trials of one (task, variation), memory carried trial to trial."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from clin.envs.base import EnvCrashed, TextEnv
from clin.memory import Memory, Scope
from pydantic import BaseModel

from clin.agent import AgentSettings, StepEvent, TrialResult, run_trial
from clin.llm.base import ChatLLM


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
    resume: bool = False,
) -> RunSummary:
    """Run ``cfg.trials`` trials; each trial's reflection conditions the next.

    The run row is closed as ``finished``, ``failed`` (an error) or ``interrupted``
    (Ctrl-C); a trial that did not reach its final transaction stays visibly unfinished.
    With ``resume``, the latest unfinished run of the same scope continues: its completed
    trials are kept, unfinished ones are marked ``interrupted`` and run again.
    """
    scope = scope_for(env, cfg)
    run_id = find_resumable(mem, scope) if resume else None
    done = 0
    if run_id is not None:
        done = reopen_run(mem, run_id, cfg.trials)
    else:
        run_id = mem.start_run(
            protocol="adapt",
            model=llm.name,
            scope=scope,
            trials_requested=cfg.trials,
            config={**cfg.model_dump(), **(run_config or {})},
        )
    results: list[TrialResult] = []
    try:
        for idx in range(done + 1, cfg.trials + 1):
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


def find_resumable(mem: Memory, scope: Scope) -> int | None:
    """The latest ADAPT run of ``scope`` that did not finish, if any."""
    return mem.latest_unfinished_run(scope, "adapt")


def reopen_run(mem: Memory, run_id: int, trials: int) -> int:
    """Mark the run running again and its unfinished trials interrupted; return how many
    trials completed (they are not re-run)."""
    return mem.reopen_run(run_id, trials)


def _close_unfinished(mem: Memory, run_id: int, status: str, error: str | None = None) -> None:
    mem.close_run(run_id, status, error)
