"""Run an evaluation (ADAPT / GEN-ENV / GEN-TASK) over many episodes, in one process or in a
pool of worker processes, resumably.

Phases run in order (training episodes, meta-memories, test episodes); the jobs inside a phase
are independent. Each worker process owns its own environment (a simulator JVM), LLM and SQLite
connection; the file is shared (WAL, ``BEGIN IMMEDIATE``, busy timeout), and every row a job
writes says which eval/episode it belongs to, so ``--resume`` skips what finished.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import pickle
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from clin.envs.base import HasGoldPaths, HasSplits, TextEnv
from clin.envs.registry import make
from clin.memory import Memory
from pydantic import BaseModel

from clin.errors import UserError
from clin.llm.base import ChatLLM, Closeable
from clin.llm.local import default_threads, usable_cpus

from . import evaldb
from .episode import run_episode
from .meta import build_meta
from .protocols import EvalConfig, EvalPlan, MetaPlan, cross_env, env_kwargs, plan, validate
from .runner import stop_message, stop_status
from .schema import open_memory

LLMFactory = Callable[[], ChatLLM]
EnvFactory = Callable[[], TextEnv]
POLL_S = 0.5


class Progress(BaseModel):
    """What a live display shows: trials completed of all planned, and what runs now."""

    eval_id: int
    done: int
    total: int
    running: list[str]
    phase: str


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
    split = env.split
    train_split = train_env.split if isinstance(train_env, HasSplits) else None
    if row is None:
        row = evaldb.create_eval(mem, cfg)
    else:
        evaldb.set_eval_status(mem, row.id, "running")
    the_plan = plan(cfg, row.namespace, split, train_split)
    evaldb.ensure_episodes(mem, row.id, the_plan.episodes)
    return row, the_plan


def run_eval(
    db: str | os.PathLike[str],
    cfg: EvalConfig | None,
    *,
    resume: bool = False,
    eval_id: int | None = None,
    workers: int = 1,
    env: TextEnv | None = None,
    llm: ChatLLM | None = None,
    llm_factory: LLMFactory | None = None,
    env_factory: EnvFactory | None = None,
    train_env: TextEnv | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    on_start: Callable[[evaldb.EvalRow], None] | None = None,
    executor: str = "local",
    ray_address: str | None = None,
    episode_timeout_s: float | None = None,
) -> EvalSummary:
    """Run (or resume) an eval to the end; the eval row ends ``finished``, ``interrupted``
    (Ctrl-C, a simulator past its restarts) or ``failed``, and no trial of it is left
    ``running``.

    With ``workers == 1`` the given ``env``/``llm`` are used in this process (built from the
    factories when missing); with more, each worker builds its own from the factories, which
    must be picklable (the defaults are).

    ``executor="ray"`` runs episodes on ``workers`` Ray actors (connecting to
    ``ray_address``, or starting a local Ray) instead; see :mod:`clin.trials.ray_executor`."""
    if workers < 1:
        raise UserError("--workers must be at least 1")
    ray_runner = load_ray_runner() if executor == "ray" else None
    if executor not in ("local", "ray"):
        raise UserError(f"unknown --executor {executor!r}: use local or ray")
    mem = open_memory(db)
    own_env, own_train = env is None, train_env is None
    try:
        cfg, old = resolve(mem, cfg, resume=resume, eval_id=eval_id)
        if cross_env(cfg) and executor != "local":
            raise UserError("a cross-environment eval (--train-env) runs with --executor "
                            "local (--workers N is fine)")
        if not cross_env(cfg):
            own_train, train_env = False, None
        elif train_env is None:
            assert cfg.train_env is not None
            train_env = make(cfg.train_env, **cfg.train_env_options)
        if env is None:
            env = (env_factory or default_env_factory(cfg))()
        row, the_plan = prepare(mem, env, cfg, old, train_env)
        if on_start:
            on_start(row)
        llm_factory = llm_factory or default_llm_factory(cfg.model, cfg.base_url)
        env_factory = env_factory or default_env_factory(cfg)
        total = sum(e.trials for e in the_plan.episodes)
        before, _ = evaldb.progress(mem, row.id)
        if ray_runner is not None:
            if own_env:
                env.close()
                own_env = False
            runner: _Runner = ray_runner(
                Path(db), workers, llm_factory, env_factory, mem, row, total, on_progress,
                address=ray_address, **({} if episode_timeout_s is None
                                         else {"episode_timeout_s": episode_timeout_s}))
        elif workers == 1:
            runner = _InProcess(mem, env, llm, llm_factory, row, total, on_progress,
                                train_env)
        else:
            if own_env:
                env.close()
                own_env = False
            if own_train and train_env is not None:  # each worker makes its own
                train_env.close()
                own_train = False
            runner = _Pool(Path(db), workers, llm_factory, env_factory, mem, row, total,
                           on_progress, train_env_factory(cfg))
        try:
            try:
                # BASE episodes need no meta-memory: they run beside the training ones.
                runner.phase("train", [("episode", e.key)
                                       for e in [*the_plan.train, *the_plan.base]])
                runner.phase("meta", [("meta", m.model_dump_json()) for m in the_plan.metas])
                runner.phase("test", [("episode", e.key) for e in the_plan.test])
            except BaseException:
                runner.close(ok=False)
                raise
            runner.close(ok=True)
        except BaseException as exc:  # the same rule as each episode's (stop_status)
            status = stop_status(exc)
            evaldb.close_unfinished(mem, row.id, status)
            evaldb.set_eval_status(mem, row.id, status, stop_message(exc))
            raise
        evaldb.set_eval_status(mem, row.id, "finished")
        done, _ = evaldb.progress(mem, row.id)
        metas = mem.db.execute("SELECT count(*) FROM meta_memories WHERE eval_id = ? AND "
                               "status = 'done'", [row.id]).fetchone()[0]
        return EvalSummary(eval_id=row.id, protocol=cfg.protocol, status="finished",
                           trials_done=done, trials_total=total, ran_trials=done - before,
                           metas=metas)
    finally:
        if own_env and env is not None:
            env.close()
        if own_train and train_env is not None:
            train_env.close()
        mem.close()


def load_ray_runner() -> type[_Runner]:
    """The Ray runner class, or a one-line :class:`UserError` saying how to install Ray."""
    try:
        from .ray_executor import RayRunner
    except ImportError:
        raise UserError("--executor ray needs Ray: pip install 'clin-agent[ray]'") from None
    return RayRunner


# ---------------------------------------------------------------------- jobs
def run_job(mem: Memory, env: TextEnv, llm: ChatLLM, eval_id: int, kind: str, arg: str,
            on_step: Callable[..., None] | None = None,
            train_env: TextEnv | None = None) -> None:
    """One unit of work, the same in this process or in a worker: an episode (``arg`` is its
    key) or a meta-memory (``arg`` is its MetaPlan as JSON). ``train_env``: where a
    cross-environment eval's training episodes run."""
    row = evaldb.get_eval(mem, eval_id)
    if kind == "episode":
        world = train_env if train_env is not None and arg.startswith("train/") else env
        run_episode(mem=mem, env=world, llm=llm, eval_id=eval_id, cfg=row.config, key=arg,
                    on_step=on_step)
        return
    meta = MetaPlan.model_validate_json(arg)
    # across environments the meta-memory is bound to none: "from another environment"
    build_meta(mem=mem, llm=llm, eval_id=eval_id, cfg=row.config, meta=meta,
               target=_target_description(mem, env, eval_id, meta),
               env_name=None if cross_env(row.config) else env.name)


def _target_description(mem: Memory, env: TextEnv, eval_id: int, meta: MetaPlan) -> str:
    """The task the meta-memory is for, as the agent will read it (its first test variation)."""
    task = meta.key.split("/", 1)[1]
    rows = list(mem.db.query(
        "SELECT variation FROM eval_episodes WHERE eval_id = ? AND task = ? AND phase = 'test' "
        "ORDER BY id LIMIT 1", [eval_id, task]))
    if not rows:
        return task
    env.reset(task, rows[0]["variation"])
    return f"{task}: {env.task_description()}"


class _Runner:
    def __init__(self, mem: Memory, row: evaldb.EvalRow, total: int,
                 on_progress: Callable[[Progress], None] | None) -> None:
        self.mem, self.row, self.total, self.on_progress = mem, row, total, on_progress
        self.current = ""

    def report(self) -> None:
        if self.on_progress:
            done, running = evaldb.progress(self.mem, self.row.id)
            self.on_progress(Progress(eval_id=self.row.id, done=done, total=self.total,
                                      running=running, phase=self.current))

    def phase(self, name: str, jobs: list[tuple[str, str]]) -> None:
        raise NotImplementedError

    def close(self, ok: bool) -> None:
        """Release workers; ``ok=False`` stops them at once (Ctrl-C, a failed job)."""


class _InProcess(_Runner):
    def __init__(self, mem: Memory, env: TextEnv, llm: ChatLLM | None, factory: LLMFactory,
                 row: evaldb.EvalRow, total: int,
                 on_progress: Callable[[Progress], None] | None,
                 train_env: TextEnv | None = None) -> None:
        super().__init__(mem, row, total, on_progress)
        self.env, self.llm, self.factory = env, llm, factory
        self.train_env = train_env
        self.given = llm  # the caller's model is the caller's to close

    def phase(self, name: str, jobs: list[tuple[str, str]]) -> None:
        self.current = name
        self.report()
        for kind, arg in jobs:
            if self.llm is None:
                self.llm = self.factory()
            run_job(self.mem, self.env, self.llm, self.row.id, kind, arg,
                    on_step=lambda _ev: self.report(), train_env=self.train_env)
            self.report()

    def close(self, ok: bool) -> None:
        if self.llm is not None and self.llm is not self.given and isinstance(self.llm, Closeable):
            self.llm.close()


class _Pool(_Runner):
    """Jobs of a phase go to a spawn-started process pool; progress is polled from SQLite."""

    def __init__(self, db: Path, workers: int, llm_factory: LLMFactory,
                 env_factory: EnvFactory, mem: Memory, row: evaldb.EvalRow, total: int,
                 on_progress: Callable[[Progress], None] | None,
                 train_env_factory: EnvFactory | None = None) -> None:
        super().__init__(mem, row, total, on_progress)
        ctx = multiprocessing.get_context("spawn")
        self.pool = ctx.Pool(workers, initializer=_worker_init,
                             initargs=(str(db), llm_factory, env_factory, workers,
                                       train_env_factory))

    def phase(self, name: str, jobs: list[tuple[str, str]]) -> None:
        self.current = name
        pending = [self.pool.apply_async(_worker_job, (self.row.id, kind, arg))
                   for kind, arg in jobs]
        while pending:
            self.report()
            time.sleep(POLL_S)
            for res in [r for r in pending if r.ready()]:
                pending.remove(res)
                res.get()  # re-raises a worker's exception here
        self.report()

    def close(self, ok: bool) -> None:
        if ok:
            self.pool.close()
        else:
            self.pool.terminate()
        self.pool.join()


# ---------------------------------------------------------------------- worker process
_WORKER: dict[str, Any] = {}


def share_cores(workers: int) -> None:
    """A worker's offline model gets its share of the cores, unless the user chose a thread
    count: each would otherwise see every core idle at start and take them all."""
    default_threads(len(usable_cpus()) // workers)


def _worker_init(db: str, llm_factory: LLMFactory, env_factory: EnvFactory,
                 workers: int, train_env_factory: EnvFactory | None = None) -> None:
    """Ctrl-C is the parent's to handle (it terminates the pool and marks what was running);
    SIGTERM closes this worker's JVMs before exiting. A cross-environment eval's training
    env is made when the worker first gets a training episode."""
    share_cores(workers)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _worker_exit)
    _WORKER.update(mem=open_memory(db), llm_factory=llm_factory, env=env_factory(), llm=None,
                   train_env_factory=train_env_factory, train_env=None)


def _worker_exit(*_: object) -> None:
    for key in ("env", "train_env"):
        env = _WORKER.get(key)
        if env is not None:
            env.close()
    os._exit(1)


def _worker_job(eval_id: int, kind: str, arg: str) -> None:
    if _WORKER["llm"] is None:
        _WORKER["llm"] = _WORKER["llm_factory"]()
    if (_WORKER["train_env"] is None and _WORKER["train_env_factory"] is not None
            and arg.startswith("train/")):
        _WORKER["train_env"] = _WORKER["train_env_factory"]()
    try:
        run_job(_WORKER["mem"], _WORKER["env"], _WORKER["llm"], eval_id, kind, arg,
                train_env=_WORKER["train_env"])
    except Exception as exc:  # the exception must pickle to reach the parent
        try:
            pickle.loads(pickle.dumps(exc))
        except Exception:  # noqa: BLE001 - e.g. custom __init__ signatures
            raise RuntimeError(f"worker {os.getpid()}: {type(exc).__name__}: {exc}") from None
        raise
