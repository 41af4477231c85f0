"""What an evaluation runs: the protocol's episodes and meta-memories, planned up front.

Planning is deterministic given the config and ScienceWorld's splits, so an interrupted eval
is resumed by matching the same keys (``phase/task/variation``) in ``eval_episodes``.

- ADAPT: every task x the first M test variations; N trials each, memory carried over.
- GEN-ENV: per task, ADAPT episodes on the first K train variations, then one meta-memory at
  the task scope (variation NULL), then the first M test variations.
- GEN-TASK: per target task, a meta-memory at the environment scope (task NULL) built from
  the training episodes of the *other* tasks (or of ``source_tasks``), then its test variations.
- BASE (GEN protocols, ``base=True``): one trial without memory on every test variation, in a
  namespace of its own, so zero-shot GEN is compared with no memory on the same variations.

Step budgets: ``fixed`` gives every trial ``max_steps``; ``gold1.5`` reproduces the CLIN
authors' cap (a trial stops once it has taken more than 5 actions and at least 1.5 x the
length of the simulator's gold path), never above ``max_steps``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field

from clin.errors import UserError
from clin.memory import Scope

from .schema import PAPER_LONG_TASKS, PAPER_SHORT_TASKS

Protocol = Literal["adapt", "gen-env", "gen-task"]
Phase = Literal["adapt", "train", "base", "test"]
StepBudget = Literal["fixed", "gold1.5"]
GOLD_FACTOR = 1.5  # the authors' cap: 1.5 x the gold path length
GOLD_MIN_STEPS = 6  # their check only runs once more than 5 actions were taken
PAPER_TASKS: tuple[str, ...] = (*PAPER_SHORT_TASKS, *PAPER_LONG_TASKS)


class EvalConfig(BaseModel):
    """Everything that defines an eval; stored as JSON in ``evals.config`` so --resume reuses it."""

    protocol: Protocol = "adapt"
    tasks: list[str] = Field(default_factory=lambda: list(PAPER_TASKS))
    source_tasks: list[str] | None = None  # GEN-TASK only; default: the other tasks
    train_variations: int = 3
    test_variations: int = 1
    trials: int = 5
    max_steps: int = 100
    step_budget: StepBudget = "gold1.5"
    base: bool = True  # GEN protocols: a no-memory BASE trial on every test variation
    meta_tokens_per_task: int = 160  # GEN-TASK: meta-memory budget per source task
    simplification: str = "easy"  # ScienceWorld's preset (an env option of that env only)
    env: str = "scienceworld"  # a registered name (clin.envs.make): where --tasks run
    env_options: dict[str, Any] = Field(default_factory=dict)  # make()'s keyword arguments
    # GEN-TASK across environments: the source tasks' training episodes run in this env, and
    # the meta-memory they feed is bound to no env ("from another environment")
    train_env: str | None = None
    train_env_options: dict[str, Any] = Field(default_factory=dict)
    model: str = "local"
    base_url: str | None = None
    agent: str = "clin"


class EpisodePlan(BaseModel):
    key: str
    phase: Phase
    task: str
    variation: int
    trials: int
    namespace: str

    def scope(self, agent: str, env: str) -> Scope:
        """Where the episode's learnings live: its task and variation, for ``agent`` in
        ``env``, in its namespace (the one place an episode's scope is built)."""
        return Scope(namespace=self.namespace, agent=agent, env=env, task=self.task,
                     variation=self.variation)


class MetaPlan(BaseModel):
    """A meta-memory: summarize the best trial of each source episode into ``scope``."""

    key: str
    namespace: str
    task: str | None  # None: environment-level (GEN-TASK)
    source_keys: list[str]

    def scope(self, agent: str, env: str | None) -> Scope:
        return Scope(namespace=self.namespace, agent=agent, env=env, task=self.task)


class EvalPlan(BaseModel):
    train: list[EpisodePlan] = Field(default_factory=list)
    base: list[EpisodePlan] = Field(default_factory=list)  # no memory, test variations
    metas: list[MetaPlan] = Field(default_factory=list)
    test: list[EpisodePlan] = Field(default_factory=list)  # adapt episodes go here too

    @property
    def episodes(self) -> list[EpisodePlan]:
        return [*self.train, *self.base, *self.test]


def step_limit(cfg: EvalConfig, gold_steps: int | None) -> int:
    """The steps a trial of an episode may take under ``cfg.step_budget``.

    ``gold1.5`` is the authors' rule (``len(actions) > 5 and len(actions) >= 1.5 * gold``
    stops the trial), so the limit is ``max(6, ceil(1.5 * gold))``, capped by ``max_steps``
    as their ``--env-step-limit`` capped it."""
    if cfg.step_budget == "fixed":
        return cfg.max_steps
    if gold_steps is None:
        raise ValueError("the gold1.5 step budget needs the gold path length")
    return min(cfg.max_steps, max(GOLD_MIN_STEPS, math.ceil(GOLD_FACTOR * gold_steps)))


Splitter = Callable[[str, str], Sequence[int]]  # (task, "train"|"test") -> variation ids


def episode_key(phase: str, task: str, variation: int) -> str:
    return f"{phase}/{task}/{variation}"


def cross_env(cfg: EvalConfig) -> bool:
    """Training in another environment than the test (``--train-env``)."""
    from clin.envs.registry import canonical

    return cfg.train_env is not None and canonical(cfg.train_env) != canonical(cfg.env)


def validate(cfg: EvalConfig, known_tasks: Sequence[str],
             train_tasks: Sequence[str] | None = None) -> None:
    """Raise a one-line UserError for settings that cannot run (``train_tasks``: the
    training env's tasks, for a cross-environment eval)."""
    for name, value in (("--trials", cfg.trials), ("--max-steps", cfg.max_steps),
                        ("--test-variations", cfg.test_variations)):
        if value < 1:
            raise UserError(f"{name} must be at least 1")
    if cfg.protocol != "adapt" and cfg.train_variations < 1:
        raise UserError("--train-variations must be at least 1 for GEN protocols")
    if not cfg.tasks:
        raise UserError("--tasks is empty")
    if cross_env(cfg):
        if cfg.protocol != "gen-task" or not cfg.source_tasks:
            raise UserError("--train-env needs --protocol gen-task and --source-tasks (tasks "
                            "of the training environment)")
        unknown = [t for t in cfg.tasks if t not in known_tasks] + [
            t for t in cfg.source_tasks if t not in (train_tasks or ())]
    else:
        unknown = [t for t in [*cfg.tasks, *(cfg.source_tasks or [])] if t not in known_tasks]
    if unknown:
        raise UserError(f"unknown task(s): {', '.join(unknown)} (`clin tasks --env ...` lists "
                        "an environment's tasks)")
    if cfg.protocol == "gen-task" and cfg.source_tasks is None and len(cfg.tasks) < 2:
        raise UserError("gen-task needs at least two --tasks (or --source-tasks): "
                        "each task is conditioned on the others")


def plan(cfg: EvalConfig, namespace: str, split: Splitter,
         train_split: Splitter | None = None) -> EvalPlan:
    """The episodes and meta-memories of an eval, in the order they must run
    (``train_split``: the training env's splits, for a cross-environment eval)."""
    out = EvalPlan()

    def episodes(phase: Phase, task: str, which: str, count: int, ns: str) -> list[EpisodePlan]:
        splitter = train_split if phase == "train" and train_split is not None else split
        ids = list(splitter(task, which))[:count]
        return [EpisodePlan(key=episode_key(phase, task, v), phase=phase, task=task,
                            variation=v, trials=cfg.trials, namespace=ns) for v in ids]

    if cfg.protocol == "adapt":
        for task in cfg.tasks:
            out.test += episodes("adapt", task, "test", cfg.test_variations, namespace)
        return out
    if cfg.base:
        # One trial, no memory: its own namespace holds nothing and it writes nothing.
        for task in cfg.tasks:
            out.base += [e.model_copy(update={"trials": 1}) for e in episodes(
                "base", task, "test", cfg.test_variations, f"{namespace}/base")]
    sources: list[str] = cfg.tasks if cfg.protocol == "gen-env" else list(
        dict.fromkeys([*cfg.tasks, *(cfg.source_tasks or [])])
    )
    if cross_env(cfg):  # only the source tasks train, in their own env
        sources = list(cfg.source_tasks or [])
    for task in sources:
        out.train += episodes("train", task, "train", cfg.train_variations, namespace)
    for task in cfg.tasks:
        if cfg.protocol == "gen-env":
            ns, meta_task = namespace, task
            src = [e.key for e in out.train if e.task == task]
        else:
            # One namespace per target, so each target's env-level meta-memory is its own.
            ns, meta_task = f"{namespace}/to-{task}", None
            from_tasks = cfg.source_tasks or [t for t in cfg.tasks if t != task]
            src = [e.key for e in out.train if e.task in from_tasks]
        out.metas.append(MetaPlan(key=f"{cfg.protocol}/{task}", namespace=ns, task=meta_task,
                                  source_keys=src))
        out.test += episodes("test", task, "test", cfg.test_variations, ns)
    return out


def env_kwargs(cfg: EvalConfig) -> dict[str, Any]:
    """``make``'s keyword arguments for the eval's env: its options, plus ``simplification``
    for the env that has that preset (stored configs before --env carry it alone)."""
    from clin.envs.registry import canonical

    opts = dict(cfg.env_options)
    if canonical(cfg.env) == "scienceworld":
        opts.setdefault("simplification", cfg.simplification)
    return opts
