"""Trial protocols. ADAPT: N trials of one (task, variation), memory carried trial to trial.

``adapt_episode`` is the one ADAPT loop: ``clin run`` (``run_adapt``) is a one-episode eval
in substance, and every eval episode (``clin.trials.episode``) runs through it too. So both
resume by one rule (the run is reopened: its completed trials are kept, its unfinished ones
closed ``interrupted`` and run again under the same run id) and close a stopped run by one
rule (``stop_status``): Ctrl-C, or a simulator that crashed past its restarts, leaves it
``interrupted`` (resumable); any other error ``failed``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from pydantic import BaseModel

from clin.agent import AgentSettings, StepEvent, TrialResult, run_trial
from clin.envs.base import EnvCrashed, TextEnv
from clin.llm.base import ChatLLM
from clin.memory import Memory, Scope
from clin.memory.runs import StopStatus


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
    cfg: AdaptConfig, *, env: TextEnv, llm: ChatLLM, mem: Memory,
    on_step: Callable[[StepEvent], None] | None = None,
    on_trial: Callable[[TrialResult], None] | None = None,
    run_config: dict[str, Any] | None = None, resume: bool = False,
) -> RunSummary:
    """Run ``cfg.trials`` trials; each trial's reflection conditions the next.

    The run row is closed as ``finished``, ``failed`` (an error) or ``interrupted``
    (Ctrl-C); a trial that did not reach its final transaction stays visibly unfinished.
    With ``resume``, the latest unfinished run of the same scope continues: its completed
    trials are kept, unfinished ones are marked ``interrupted`` and run again.
    """
    scope = scope_for(env, cfg)
    run_id = find_resumable(mem, scope) if resume else None
    resumed = run_id is not None
    if run_id is None:
        run_id = mem.start_run(
            protocol="adapt",
            model=llm.name,
            scope=scope,
            trials_requested=cfg.trials,
            config={**cfg.model_dump(), **(run_config or {})},
        )
    results = adapt_episode(
        OpenRun(run_id, scope, cfg.task, cfg.variation, cfg.trials, resumed), mem=mem, env=env,
        llm=llm, settings=cfg.settings, on_step=on_step, on_trial=on_trial)
    return RunSummary(run_id=run_id, model=llm.name, trials=results)


class OpenRun(NamedTuple):
    """A ``runs`` row that exists, and what to play in it: trials 1..``trials`` of ``task``
    variation ``variation``, learning in ``scope``. ``resumed``: it ran before (its completed
    trials are kept)."""

    run_id: int
    scope: Scope
    task: str
    variation: int
    trials: int
    resumed: bool = False


def adapt_episode(
    run: OpenRun, *, mem: Memory, env: TextEnv, llm: ChatLLM, settings: AgentSettings,
    on_step: Callable[[StepEvent], None] | None = None,
    on_trial: Callable[[TrialResult], None] | None = None,
    on_close: Callable[[str], None] | None = None,
) -> list[TrialResult]:
    """The one ADAPT loop over ``run``: reopen it when ``resumed``, run its trials but those
    it completed before, each trial's reflection conditioning the next; close it
    ``finished``, or as ``stop_status`` says when an exception stops it (re-raised).
    ``on_close(status)`` is told the run's final status (an eval episode mirrors it in its own
    row). Returns the trials run by this call."""
    run_id = run.run_id
    if run.resumed:
        reopen_run(mem, run_id, run.trials)
    results: list[TrialResult] = []
    try:
        done = {r["idx"] for r in mem.completed_trials(run_id)}
        for idx in range(1, run.trials + 1):
            if idx in done:
                continue
            result = run_trial(env=env, llm=llm, mem=mem, run_id=run_id, scope=run.scope,
                               idx=idx, task=run.task, variation=run.variation,
                               settings=settings, on_step=on_step)
            results.append(result)
            if on_trial:
                on_trial(result)
    except BaseException as exc:
        status = stop_status(exc)
        mem.close_run(run_id, status, stop_message(exc))
        if on_close:
            on_close(status)
        raise
    mem.finish_run(run_id, "finished")
    if on_close:
        on_close("finished")
    return results


def stop_status(exc: BaseException) -> StopStatus:
    """How a run stopped by ``exc`` is closed: Ctrl-C, or a simulator that crashed past its
    restarts, is ``interrupted`` (nothing is wrong with the run: resume it); anything else
    ``failed``."""
    return "interrupted" if isinstance(exc, KeyboardInterrupt | EnvCrashed) else "failed"


def stop_message(exc: BaseException) -> str | None:
    """What the run's ``error`` column says: nothing for Ctrl-C (nothing went wrong), the
    crash's own message for a simulator crash, the exception's type and message otherwise."""
    if isinstance(exc, KeyboardInterrupt):
        return None
    return str(exc) if isinstance(exc, EnvCrashed) else f"{type(exc).__name__}: {exc}"


def find_resumable(mem: Memory, scope: Scope) -> int | None:
    """The latest ADAPT run of ``scope`` that did not finish, if any."""
    return mem.latest_unfinished_run(scope, "adapt")


def reopen_run(mem: Memory, run_id: int, trials: int) -> int:
    """Mark the run running again and its unfinished trials interrupted; return how many
    trials completed (they are not re-run)."""
    return mem.reopen_run(run_id, trials)
