"""What an evaluation runs: the protocol's episodes and meta-memories, planned up front.

Planning is deterministic given the config and ScienceWorld's splits, so an interrupted eval
is resumed by matching the same keys (``phase/task/variation``) in ``eval_episodes``.

- ADAPT: every task x the first M test variations; N trials each, memory carried over.
- GEN-ENV: per task, ADAPT episodes on the first K train variations, then one meta-memory at
  the task scope (variation NULL), then the first M test variations.
- GEN-TASK: per target task, a meta-memory at the environment scope (task NULL) built from
  the training episodes of the *other* tasks (or of ``source_tasks``), then its test variations.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

from clin.memory import Scope
from pydantic import BaseModel, Field

from clin.errors import UserError

from .schema import PAPER_LONG_TASKS, PAPER_SHORT_TASKS

Protocol = Literal["adapt", "gen-env", "gen-task"]
Phase = Literal["adapt", "train", "test"]
PAPER_TASKS: tuple[str, ...] = (*PAPER_SHORT_TASKS, *PAPER_LONG_TASKS)
ENV_NAME = "scienceworld"


class EvalConfig(BaseModel):
    """Everything that defines an eval; stored as JSON in ``evals.config`` so --resume reuses it."""

    protocol: Protocol = "adapt"
    tasks: list[str] = Field(default_factory=lambda: list(PAPER_TASKS))
    source_tasks: list[str] | None = None  # GEN-TASK only; default: the other tasks
    train_variations: int = 3
    test_variations: int = 1
    trials: int = 5
    max_steps: int = 100
    simplification: str = "easy"
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

    def scope(self, agent: str) -> Scope:
        return Scope(namespace=self.namespace, agent=agent, env=ENV_NAME, task=self.task,
                     variation=self.variation)


class MetaPlan(BaseModel):
    """A meta-memory: summarize the best trial of each source episode into ``scope``."""

    key: str
    namespace: str
    task: str | None  # None: environment-level (GEN-TASK)
    source_keys: list[str]

    def scope(self, agent: str) -> Scope:
        return Scope(namespace=self.namespace, agent=agent, env=ENV_NAME, task=self.task)


class EvalPlan(BaseModel):
    train: list[EpisodePlan] = Field(default_factory=list)
    metas: list[MetaPlan] = Field(default_factory=list)
    test: list[EpisodePlan] = Field(default_factory=list)  # adapt episodes go here too

    @property
    def episodes(self) -> list[EpisodePlan]:
        return [*self.train, *self.test]


Splitter = Callable[[str, str], Sequence[int]]  # (task, "train"|"test") -> variation ids


def episode_key(phase: str, task: str, variation: int) -> str:
    return f"{phase}/{task}/{variation}"


def validate(cfg: EvalConfig, known_tasks: Sequence[str]) -> None:
    """Raise a one-line UserError for settings that cannot run."""
    for name, value in (("--trials", cfg.trials), ("--max-steps", cfg.max_steps),
                        ("--test-variations", cfg.test_variations)):
        if value < 1:
            raise UserError(f"{name} must be at least 1")
    if cfg.protocol != "adapt" and cfg.train_variations < 1:
        raise UserError("--train-variations must be at least 1 for GEN protocols")
    if not cfg.tasks:
        raise UserError("--tasks is empty")
    unknown = [t for t in [*cfg.tasks, *(cfg.source_tasks or [])] if t not in known_tasks]
    if unknown:
        raise UserError(f"unknown task(s): {', '.join(unknown)} (`clin tasks` lists all 30)")
    if cfg.protocol == "gen-task" and cfg.source_tasks is None and len(cfg.tasks) < 2:
        raise UserError("gen-task needs at least two --tasks (or --source-tasks): "
                        "each task is conditioned on the others")


def plan(cfg: EvalConfig, namespace: str, split: Splitter) -> EvalPlan:
    """The episodes and meta-memories of an eval, in the order they must run."""
    out = EvalPlan()

    def episodes(phase: Phase, task: str, which: str, count: int, ns: str) -> list[EpisodePlan]:
        ids = list(split(task, which))[:count]
        return [EpisodePlan(key=episode_key(phase, task, v), phase=phase, task=task,
                            variation=v, trials=cfg.trials, namespace=ns) for v in ids]

    if cfg.protocol == "adapt":
        for task in cfg.tasks:
            out.test += episodes("adapt", task, "test", cfg.test_variations, namespace)
        return out
    sources = cfg.tasks if cfg.protocol == "gen-env" else list(
        dict.fromkeys([*cfg.tasks, *(cfg.source_tasks or [])])
    )
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
