"""Run an evaluation (ADAPT / GEN-ENV / GEN-TASK) over many episodes, in one process or in a
pool of worker processes, resumably.

Phases run in order (training episodes, meta-memories, test episodes); the jobs inside a phase
are independent. Each worker process owns its own environment (a simulator JVM), LLM and SQLite
connection; the file is shared (WAL, ``BEGIN IMMEDIATE``, busy timeout), and every row a job
writes says which eval/episode it belongs to, so ``--resume`` skips what finished.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel

from clin.envs.base import HasGoldPaths, HasSplits, TextEnv
from clin.envs.registry import make
from clin.errors import UserError
from clin.llm.base import ChatLLM
from clin.memory import Memory

from . import evaldb
from .jobs import (
    EnvFactory,
    InProcessRunner,
    JobRunner,
    LLMFactory,
    PoolRunner,
    Progress,
)
from .protocols import EvalConfig, EvalPlan, cross_env, env_kwargs, plan, validate
from .runner import stop_message, stop_status
from .schema import open_memory

if TYPE_CHECKING:
    from .ray_jobs import RayRunner


class EvalSummary(BaseModel):
    eval_id: int
    protocol: str
    status: str
    trials_done: int
    trials_total: int
    ran_trials: int  # trials run by this call (a resumed eval skips finished ones)
    metas: int


def default_llm_factory(spec: str, base_url: str | None = None) -> LLMFactory:
    from clin.llm.spec import build_llm

    return functools.partial(build_llm, spec, base_url=base_url)


def default_env_factory(cfg: EvalConfig) -> EnvFactory:
    """Builds the eval's env by name (picklable, for worker processes)."""
    from clin.envs.registry import make

    return functools.partial(make, cfg.env, **env_kwargs(cfg))


def train_env_factory(cfg: EvalConfig) -> EnvFactory | None:
    """Builds a cross-environment eval's training env (picklable); None for one env."""
    if not cross_env(cfg):
        return None
    assert cfg.train_env is not None
    return functools.partial(make, cfg.train_env, **cfg.train_env_options)


def resolve(mem: Memory, cfg: EvalConfig | None, *, resume: bool,
            eval_id: int | None = None) -> tuple[EvalConfig, evaldb.EvalRow | None]:
    """The config to run: the given one, or for --resume the stored one of the eval."""
    if not resume:
        if cfg is None:
            raise ValueError("a new eval needs a config")
        return cfg, None
    eval_id = eval_id or evaldb.latest_eval(mem, unfinished=True)
    if eval_id is None:
        raise UserError("nothing to resume: every eval in this database has finished")
    try:
        row = evaldb.get_eval(mem, eval_id)
    except LookupError:
        raise UserError(f"no eval {eval_id} in this database") from None
    if row.status == "finished":
        raise UserError(f"eval {eval_id} has already finished")
    return row.config, row


def prepare(mem: Memory, env: TextEnv, cfg: EvalConfig,
            row: evaldb.EvalRow | None, train_env: TextEnv | None = None
            ) -> tuple[evaldb.EvalRow, EvalPlan]:
    """Create the eval (or reopen ``row``) and store its planned episodes (``train_env``:
    where a cross-environment eval's training episodes run)."""
    validate(cfg, [t.name for t in env.tasks()],
             [t.name for t in train_env.tasks()] if train_env is not None else None)
    for world in (env, *([train_env] if train_env is not None else [])):
        if not isinstance(world, HasSplits):
            raise UserError(f"environment {world.name} has no train/test variation splits")
        if cfg.step_budget != "fixed" and not isinstance(world, HasGoldPaths):
            raise UserError(f"environment {world.name} has no gold paths: "
                            "use --step-budget fixed")
    assert isinstance(env, HasSplits)  # checked above
    split = env.split
    train_split = train_env.split if isinstance(train_env, HasSplits) else None
    if row is None:
        row = evaldb.create_eval(mem, cfg)
    else:
        evaldb.set_eval_status(mem, row.id, "running")
    the_plan = plan(cfg, row.namespace, split, train_split)
    evaldb.ensure_episodes(mem, row.id, the_plan.episodes)
    return row, the_plan


@dataclass(frozen=True)
class Execution:
    """Where an eval's episodes run: one after another in this process (``workers=1``), on a
    pool of ``workers`` processes, or with ``executor="ray"`` on ``workers`` Ray actors
    (joining ``ray_address``; a hung episode is cancelled and re-run after
    ``episode_timeout_s``), see :mod:`clin.trials.ray_jobs`."""

    workers: int = 1
    executor: str = "local"
    ray_address: str | None = None
    episode_timeout_s: float | None = None

    def check(self) -> None:
        """Refuse settings that cannot run, each with the CLI option's own line."""
        if self.workers < 1:
            raise UserError("--workers must be at least 1")
        if self.executor not in ("local", "ray"):
            raise UserError(f"unknown --executor {self.executor!r}: use local or ray")
        if self.executor == "ray":
            load_ray_runner()  # one line when Ray is not installed
        elif self.ray_address is not None:
            raise UserError("--ray-address needs --executor ray")
        if self.episode_timeout_s is not None and self.episode_timeout_s <= 0:
            raise UserError("--episode-timeout must be a positive number of seconds")


@dataclass(frozen=True)
class Parts:
    """What an eval's episodes run with (tests and library users inject theirs). Each one
    left out is built from the config: in this process when ``workers == 1``, else in each
    worker from the factories, which must be picklable (the defaults are). ``env`` and
    ``train_env`` given here are the caller's to close; ``llm`` too."""

    env: TextEnv | None = None
    train_env: TextEnv | None = None  # a cross-environment eval's training world
    llm: ChatLLM | None = None
    env_factory: EnvFactory | None = None
    llm_factory: LLMFactory | None = None


def run_eval(
    db: str | os.PathLike[str],
    cfg: EvalConfig | None,
    *,
    resume: bool = False,
    eval_id: int | None = None,
    execution: Execution = Execution(),
    parts: Parts = Parts(),
    on_progress: Callable[[Progress], None] | None = None,
    on_start: Callable[[evaldb.EvalRow], None] | None = None,
) -> EvalSummary:
    """Run (or resume) an eval to the end; the eval row ends ``finished``, ``interrupted``
    (Ctrl-C, a simulator past its restarts) or ``failed``, and no trial of it is left
    ``running``."""
    execution.check()
    mem = open_memory(db)
    with contextlib.ExitStack() as worlds:  # the envs built here, closed here
        try:
            cfg, old = resolve(mem, cfg, resume=resume, eval_id=eval_id)
            if cross_env(cfg) and execution.executor != "local":
                raise UserError("a cross-environment eval (--train-env) runs with --executor "
                                "local (--workers N is fine)")
            env, train_env = _worlds(cfg, parts, worlds)
            row, the_plan = prepare(mem, env, cfg, old, train_env)
            if on_start:
                on_start(row)
            total = sum(e.trials for e in the_plan.episodes)
            before, _ = evaldb.progress(mem, row.id)
            if execution.executor == "ray" or execution.workers > 1:
                worlds.close()  # workers build their own; the JVMs here would sit idle
            runner = _runner(Path(db), mem, row, total, cfg, execution, parts, env, train_env,
                             on_progress)
            _run_phases(mem, row.id, runner, the_plan)
            done, _ = evaldb.progress(mem, row.id)
            metas = mem.db.execute("SELECT count(*) FROM meta_memories WHERE eval_id = ? AND "
                                   "status = 'done'", [row.id]).fetchone()[0]
            return EvalSummary(eval_id=row.id, protocol=cfg.protocol, status="finished",
                               trials_done=done, trials_total=total, ran_trials=done - before,
                               metas=metas)
        finally:
            mem.close()


def _worlds(cfg: EvalConfig, parts: Parts, owned: contextlib.ExitStack
            ) -> tuple[TextEnv, TextEnv | None]:
    """The eval's env and (cross-environment only) training env: the given ones, else built
    here and closed with ``owned``."""
    env = parts.env
    if env is None:
        env = owned.enter_context(contextlib.closing((parts.env_factory
                                                      or default_env_factory(cfg))()))
    if not cross_env(cfg):
        return env, None
    train_env = parts.train_env
    if train_env is None:
        factory = train_env_factory(cfg)
        assert factory is not None  # a cross-environment config names its training env
        train_env = owned.enter_context(contextlib.closing(factory()))
    return env, train_env


def _runner(db: Path, mem: Memory, row: evaldb.EvalRow, total: int, cfg: EvalConfig,
            execution: Execution, parts: Parts, env: TextEnv, train_env: TextEnv | None,
            on_progress: Callable[[Progress], None] | None) -> JobRunner:
    llm_factory = parts.llm_factory or default_llm_factory(cfg.model, cfg.base_url)
    env_factory = parts.env_factory or default_env_factory(cfg)
    if execution.executor == "ray":
        return load_ray_runner()(db, execution.workers, llm_factory, env_factory, mem, row,
                                 total, on_progress, address=execution.ray_address,
                                 episode_timeout_s=execution.episode_timeout_s)
    if execution.workers == 1:
        return InProcessRunner(mem, env, parts.llm, llm_factory, row, total, on_progress,
                               train_env)
    return PoolRunner(db, execution.workers, llm_factory, env_factory, mem, row, total,
                      on_progress, train_env_factory(cfg))


def _run_phases(mem: Memory, eval_id: int, runner: JobRunner, the_plan: EvalPlan) -> None:
    """Training (with BASE, which needs no meta-memory), meta-memories, then test; the eval
    row ends ``finished``, or by the same rule as each episode's (``stop_status``)."""
    try:
        try:
            runner.phase("train", [("episode", e.key)
                                   for e in [*the_plan.train, *the_plan.base]])
            runner.phase("meta", [("meta", m.model_dump_json()) for m in the_plan.metas])
            runner.phase("test", [("episode", e.key) for e in the_plan.test])
        except BaseException:
            runner.close(ok=False)
            raise
        runner.close(ok=True)
    except BaseException as exc:
        status = stop_status(exc)
        evaldb.close_unfinished(mem, eval_id, status)
        evaldb.set_eval_status(mem, eval_id, status, stop_message(exc))
        raise
    evaldb.set_eval_status(mem, eval_id, "finished")


def load_ray_runner() -> type[RayRunner]:
    """The Ray runner class, or a one-line :class:`UserError` saying how to install Ray."""
    try:
        from .ray_jobs import RayRunner
    except ImportError:
        raise UserError("--executor ray needs Ray: pip install 'clin-agent[ray]'") from None
    return RayRunner


