"""Where an eval's jobs run: in this process or in a pool of worker processes (and, in
:mod:`clin.trials.ray_jobs`, on Ray actors). A job is one episode or one meta-memory
(``run_job``), the same wherever it runs; a runner takes one phase's jobs at a time and
reports progress read from SQLite. ``clin.trials.eval`` picks the runner.

(Not ``clin.trials.runner``, which runs the trials of one ADAPT run, nor ``clin.executor``,
which grounds the agent's proposals in actions.)
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from clin.envs.base import TextEnv
from clin.llm.base import ChatLLM, Closeable
from clin.llm.cpu import default_threads, usable_cpus
from clin.memory import Memory

from . import evaldb
from .episode import run_episode
from .meta import build_meta
from .protocols import MetaPlan, cross_env
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
               target=target_description(mem, env, eval_id, meta),
               env_name=None if cross_env(row.config) else env.name)


def target_description(mem: Memory, env: TextEnv, eval_id: int, meta: MetaPlan) -> str:
    """The task the meta-memory is for, as the agent will read it (its first test variation)."""
    task = meta.key.split("/", 1)[1]
    rows = list(mem.db.query(
        "SELECT variation FROM eval_episodes WHERE eval_id = ? AND task = ? AND phase = 'test' "
        "ORDER BY id LIMIT 1", [eval_id, task]))
    if not rows:
        return task
    env.reset(task, rows[0]["variation"])
    return f"{task}: {env.task_description()}"


class JobRunner:
    """Runs an eval's jobs one phase at a time; ``close`` releases its workers."""

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


class InProcessRunner(JobRunner):
    """Jobs one after another in this process, with the caller's env and LLM."""

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


class PoolRunner(JobRunner):
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
