"""Run an eval's episodes on a Ray cluster (``clin eval --executor ray``).

A pool of Ray actors, each holding one environment (a ScienceWorld JVM) and one LLM client,
reused across episodes. Actors never open the user's database: the driver sends each episode
the learnings it may recall, the actor runs its trials against a private temporary memory and
returns the episode's rows, and the driver writes them into the real file in one transaction
(see :mod:`clin.memory.transfer`). The SQLite file keeps exactly one writer, on the driver.

Faults: an actor that dies mid-episode (process killed, node lost) is restarted by Ray and the
episode is re-run on another actor; an episode running longer than ``episode_timeout_s`` has
its actor killed and is re-run. Each failed attempt is stored as a ``runs`` row with status
``failed`` and ``config.executor = 'ray'`` (the landed run says which attempt it was), so every
retry is visible in the database. A driver that dies loses only the episodes in flight:
``clin eval --resume`` runs them again.
"""

from __future__ import annotations

import math
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayActorError

from clin.agent import StepEvent
from clin.envs.base import TextEnv
from clin.envs.registry import canonical
from clin.errors import UserError
from clin.llm.base import ChatLLM, Completion, Message, Purpose, current_purpose, purpose
from clin.llm.cpu import default_threads
from clin.memory import Memory
from clin.memory.db import now
from clin.memory.transfer import (
    RunRows,
    export_run,
    import_run,
    recallable_learnings,
    seed_learnings,
)

from . import evaldb
from .episode import run_episode
from .jobs import POLL_S, EnvFactory, JobRunner, LLMFactory, Progress, run_job
from .meta import build_meta
from .protocols import MetaPlan
from .schema import open_memory

# eval_episodes columns the driver owns; the others are what the episode recorded about itself
_EPISODE_KEEP = {"id", "eval_id", "key", "phase", "task", "variation", "trials", "namespace",
                 "run_id", "status", "started_at", "finished_at"}
DEFAULT_TIMEOUT_S = 3600.0
DEFAULT_ATTEMPTS = 3
RESTARTS = 5  # per actor: beyond it (e.g. killed over and over for memory) it is lost
STARTUP_TIMEOUT_S = 600.0  # an actor (its JVM) must be up within this, at start or restart

try:  # an actor that is restarting answers "unavailable": the same fault, seen earlier
    from ray.exceptions import ActorUnavailableError
    ACTOR_FAULTS: tuple[type[BaseException], ...] = (RayActorError, ActorUnavailableError)
except ImportError:  # pragma: no cover - older Ray
    ACTOR_FAULTS = (RayActorError,)


@dataclass
class EpisodeWork:
    """What an actor needs to run one episode: rows of the driver's memory, as dicts (its
    eval, the episode, and the learnings it may recall, all from broader scopes)."""

    eval_row: dict[str, Any]
    episode_row: dict[str, Any]
    learnings: list[dict[str, Any]]


def _proc(where: dict[str, Any]) -> tuple[str, int]:
    return where["node_id"], where["pid"]


def _connect(address: str | None, cpus: float) -> None:
    """Join ``address``; with none, the cluster ``ray start`` runs on this machine (or
    $RAY_ADDRESS), else a new local Ray; ``"local"`` always starts a new one. A Ray started
    here gets a CPU slot per actor even beyond the cores: episodes wait on the LLM, as local
    ``--workers N`` may exceed them."""
    opts: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                            "logging_level": "ERROR"}
    if address != "local":
        try:
            ray.init(address=address or "auto", **opts)
            return
        except ConnectionError as exc:
            if address:
                raise UserError(f"cannot reach the Ray cluster at {address}: {exc}") from None
    ray.init(address="local", num_cpus=max(os.cpu_count() or 1, math.ceil(cpus)), **opts)


EPISODE_DIR_PREFIX = "clin-episode-"


def sweep_stale_episode_dirs(tmp: Path | None = None) -> int:
    """Remove the episode folders of actors that died mid-episode (an actor killed for its
    time limit, or with its node, runs no ``finally``); each folder's name carries the pid of
    the process that made it. Returns how many were removed."""
    removed = 0
    for path in Path(tmp or tempfile.gettempdir()).glob(f"{EPISODE_DIR_PREFIX}*-*"):
        pid = path.name.removeprefix(EPISODE_DIR_PREFIX).split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


class EpisodeActor:
    """One environment and one LLM, reused across episodes. ``max_concurrency=2`` lets
    :meth:`status` answer while :meth:`run` is busy (only ``run`` touches env and LLM)."""

    def __init__(self, llm_factory: LLMFactory, env_factory: EnvFactory,
                 cpus: float = 1) -> None:
        default_threads(int(cpus))  # an offline model uses the CPUs Ray gave this actor
        self.llm_factory = llm_factory
        self.env: TextEnv = env_factory()
        self.llm: ChatLLM | None = None
        self.lock = threading.Lock()
        self.state: dict[str, Any] = {}

    def _llm(self) -> ChatLLM:
        if self.llm is None:
            self.llm = self.llm_factory()
        return self.llm

    def where(self) -> dict[str, Any]:
        """Which process and node this actor is (for attempts rows and tests)."""
        return {"pid": os.getpid(), "node": socket.gethostname(),
                "node_id": ray.get_runtime_context().get_node_id()}

    def status(self) -> dict[str, Any]:
        return dict(self.state)

    def run(self, work: EpisodeWork) -> tuple[RunRows, dict[str, Any]]:
        """Run the episode against a private memory in a temp dir; return its rows and where
        it ran, with the episode's row as the episode left it (what it recorded about itself,
        e.g. its step limit)."""
        with self.lock:
            ep = work.episode_row
            self.state = {"key": ep["key"], "task": ep["task"], "variation": ep["variation"],
                          "trial": 0, "step": 0, "done": 0}
            sweep_stale_episode_dirs()  # e.g. the folder of an actor whose episode this reruns
            tmp = tempfile.mkdtemp(prefix=f"{EPISODE_DIR_PREFIX}{os.getpid()}-")
            try:
                with open_memory(Path(tmp) / "episode.db") as mem:
                    mem.db.table("evals").insert(work.eval_row)
                    mem.db.table("eval_episodes").insert({**ep, "run_id": None, "status": "pending"})
                    seed_learnings(mem, work.learnings)
                    row = evaldb.get_eval(mem, work.eval_row["id"])
                    result = run_episode(mem=mem, env=self.env, llm=self._llm(),
                                         eval_id=row.id, cfg=row.config, key=ep["key"],
                                         on_step=self._on_step, on_trial=self._on_trial)
                    rows = export_run(mem, result.run_id,
                                      seeded={r["id"] for r in work.learnings})
                    episode = next(iter(mem.db.query(
                        "SELECT * FROM eval_episodes WHERE key = ?", [ep["key"]])))
                    return rows, {**self.where(), "episode": episode}
            finally:
                self.state = {}
                shutil.rmtree(tmp, ignore_errors=True)

    def _on_step(self, ev: StepEvent) -> None:
        self.state.update(trial=ev.trial, step=ev.step)

    def _on_trial(self, _: object) -> None:
        self.state["done"] = self.state.get("done", 0) + 1

    def describe(self, task: str, variation: int) -> str:
        """The task as the agent reads it (the target a meta-memory is written for)."""
        with self.lock:
            self.env.reset(task, variation)
            return f"{task}: {self.env.task_description()}"

    def llm_info(self) -> dict[str, Any]:
        llm = self._llm()
        return {"name": llm.name, "enforces_schema": bool(getattr(llm, "enforces_schema",
                                                                  False))}

    def complete(self, messages: list[Message], json_schema: dict[str, Any] | None,
                 max_tokens: int, why: Purpose | None = None) -> Completion:
        with purpose(why) if why else nullcontext():
            return self._llm().complete(messages, json_schema=json_schema,
                                        max_tokens=max_tokens)


class RemoteLLM:
    """A :class:`ChatLLM` whose calls run on an actor (the driver builds meta-memories with
    it, so the driver needs neither a model nor a JVM)."""

    def __init__(self, actor: Any, timeout_s: float) -> None:
        self.actor, self.timeout_s = actor, timeout_s
        info: dict[str, Any] = ray.get(actor.llm_info.remote(), timeout=timeout_s)
        self.name, self.enforces_schema = info["name"], info["enforces_schema"]

    def complete(self, messages: list[Message], *, json_schema: dict[str, Any] | None = None,
                 max_tokens: int | None = None, **_: Any) -> Completion:
        return ray.get(self.actor.complete.remote(messages, json_schema, max_tokens,
                                                  current_purpose()),
                       timeout=self.timeout_s)


@dataclass
class _Job:
    kind: str
    arg: str
    attempt: int = 1
    avoid: set[int] = field(default_factory=set)


@dataclass
class _Flight:
    job: _Job
    actor: int
    ref: Any
    started: float


class RayRunner(JobRunner):
    """Phases as in :class:`clin.trials.jobs.PoolRunner`, episodes on Ray actors."""

    def __init__(self, db: Path, workers: int, llm_factory: LLMFactory,
                 env_factory: EnvFactory, mem: Memory, row: evaldb.EvalRow, total: int,
                 on_progress: Callable[[Progress], None] | None, *,
                 address: str | None = None, episode_timeout_s: float | None = None,
                 max_attempts: int = DEFAULT_ATTEMPTS, actor_cpus: float = 1.0) -> None:
        super().__init__(mem, row, total, on_progress)
        self.llm_factory, self.env_factory = llm_factory, env_factory
        # the scope env of the eval's episodes (the actors' env.name: a registered name)
        self.env_name = canonical(row.config.env)
        self.timeout_s = DEFAULT_TIMEOUT_S if episode_timeout_s is None else episode_timeout_s
        self.max_attempts = max_attempts
        self.actors: list[Any] = []
        self.states: dict[int, dict[str, Any]] = {}
        self.recovering: dict[int, Any] = {}  # actor -> probe call, while Ray restarts it
        self.recovering_since: dict[int, float] = {}
        self.lost: set[int] = set()
        self.high = 0
        self.local: tuple[TextEnv, ChatLLM] | None = None
        self.started_ray = not ray.is_initialized()
        if self.started_ray:
            _connect(address, workers * actor_cpus)
        cpus = ray.cluster_resources().get("CPU", 0)
        if cpus < workers * actor_cpus:
            self.close(ok=False)
            raise UserError(f"--workers {workers} needs {workers * actor_cpus:g} CPUs on the "
                            f"Ray cluster, which has {cpus:g}: add nodes or start them with "
                            "`ray start --num-cpus N`")
        remote = ray.remote(EpisodeActor).options(
            max_restarts=RESTARTS, max_task_retries=0, max_concurrency=2, num_cpus=actor_cpus)
        self.actors = [remote.remote(llm_factory, env_factory, actor_cpus)
                       for _ in range(workers)]
        # environments up before any timer starts; the pids tell a restarted actor apart
        try:
            where = ray.get([a.where.remote() for a in self.actors], timeout=STARTUP_TIMEOUT_S)
        except (*ACTOR_FAULTS, GetTimeoutError) as exc:
            self.close(ok=False)
            raise RuntimeError(
                f"Ray actors did not start ({type(exc).__name__}): every node needs Java 17 "
                "and clin-agent installed; Ray also kills workers when a node runs out of "
                "memory (see the raylet logs)") from None
        self.procs = [_proc(w) for w in where]

    # ------------------------------------------------------------------ phases
    def phase(self, name: str, jobs: list[tuple[str, str]]) -> None:
        self.current = name
        self.report()
        episodes = [_Job(k, a) for k, a in jobs if k == "episode"]
        metas = [MetaPlan.model_validate_json(a) for k, a in jobs if k == "meta"]
        self._run_episodes(episodes)
        for meta in metas:
            self._run_meta(meta)
            self.report()
        self.report()

    def _run_episodes(self, jobs: list[_Job]) -> None:
        queue: list[_Job] = []
        for job in jobs:
            ep = evaldb.episode(self.mem, self.row.id, job.arg)
            if ep.status == "finished":
                continue
            if ep.run_id is not None:  # half-run by local workers: finish it here
                self._run_local(job)
                continue
            queue.append(job)
        flying: dict[int, _Flight] = {}
        while queue or flying:
            self._check_recovering()
            self._dispatch(queue, flying)
            refs = [f.ref for f in flying.values()]
            ready: list[Any] = []
            if refs:
                ready, _ = ray.wait(refs, num_returns=1, timeout=POLL_S)
            else:
                time.sleep(POLL_S)  # every actor is restarting: wait for one
            for ref in ready:
                flight = next(f for f in flying.values() if f.ref == ref)
                del flying[flight.actor]
                try:
                    rows, where = ray.get(ref)
                except ACTOR_FAULTS as exc:
                    self._retry(flight, queue, f"actor died: {type(exc).__name__}")
                    continue
                self._land(flight, rows, where)
            for flight in [f for f in flying.values()
                           if time.monotonic() - f.started > self.timeout_s]:
                del flying[flight.actor]
                ray.kill(self.actors[flight.actor], no_restart=False)
                self._retry(flight, queue, f"timed out after {self.timeout_s:g} s")
            self._poll_status(flying)
            self.report()

    def _check_recovering(self) -> None:
        """Actors that died are restarted by Ray; one is given work again once it answers
        (a call made while it restarts fails at once with ActorUnavailableError)."""
        for i, ref in list(self.recovering.items()):
            ready, _ = ray.wait([ref], timeout=0)
            if not ready:
                continue
            try:
                pid = _proc(ray.get(ref))
            except ACTOR_FAULTS:
                pid = self.procs[i]
            if pid == self.procs[i]:  # the old process (a kill is asynchronous) or none yet
                if time.monotonic() - self.recovering_since[i] > STARTUP_TIMEOUT_S:
                    self._lose(i)
                else:
                    self.recovering[i] = self.actors[i].where.remote()
            else:
                self.procs[i] = pid
                del self.recovering[i]

    def _lose(self, i: int) -> None:
        """Actor ``i`` did not come back (restarts exhausted or too slow): stop waiting."""
        self.lost.add(i)
        del self.recovering[i]
        if len(self.lost) == len(self.actors):
            raise RuntimeError(
                f"all {len(self.actors)} Ray actors were lost (each restarted up to {RESTARTS} "
                "times); see the raylet logs (out of memory? a node gone?)")

    def _dispatch(self, queue: list[_Job], flying: dict[int, _Flight]) -> None:
        free = [i for i in range(len(self.actors))
                if i not in flying and i not in self.recovering and i not in self.lost]
        for job in list(queue):
            if not free:
                return
            # another actor than the one(s) it failed on, when one is free
            pick = next((i for i in free if i not in job.avoid), free[0])
            free.remove(pick)
            queue.remove(job)
            ep = evaldb.episode(self.mem, self.row.id, job.arg)
            scope = ep.scope(self.row.config.agent, self.env_name)
            work = EpisodeWork(
                eval_row=next(iter(self.mem.db.query("SELECT * FROM evals WHERE id = ?",
                                                     [self.row.id]))),
                episode_row=next(iter(self.mem.db.query(
                    "SELECT * FROM eval_episodes WHERE id = ?", [ep.id]))),
                learnings=[r for r in recallable_learnings(self.mem, scope)
                           if r["variation"] is None],  # ancestors only: read-only there
            )
            if ep.status != "running":
                evaldb.set_episode(self.mem, ep.id, status="running", started_at=now())
            flying[pick] = _Flight(job, pick, self.actors[pick].run.remote(work),
                                   time.monotonic())

    def _land(self, flight: _Flight, rows: RunRows, where: dict[str, Any]) -> None:
        """Write the episode's rows and mark it finished, in one transaction; an episode
        that already landed (a duplicate) is dropped, so it is recorded once."""
        ep = evaldb.episode(self.mem, self.row.id, flight.job.arg)
        with self.mem.transaction() as conn:
            (status,) = conn.execute("SELECT status FROM eval_episodes WHERE id = ?",
                                     [ep.id]).fetchone()
            if status == "finished":
                return
            run_id = import_run(conn, rows, config={
                "executor": "ray", "attempt": flight.job.attempt, "actor": flight.actor,
                "node": where["node_id"], "pid": where["pid"]}).run_id
            own = {k: v for k, v in where["episode"].items() if k not in _EPISODE_KEEP}
            sets = "".join(f", [{k}] = ?" for k in own)  # column names of our own schema
            conn.execute(f"UPDATE eval_episodes SET run_id = ?, status = 'finished', "
                         f"finished_at = ?{sets} WHERE id = ?",
                         [run_id, now(), *own.values(), ep.id])
        self.states.pop(flight.actor, None)

    def _retry(self, flight: _Flight, queue: list[_Job], why: str) -> None:
        """Store the failed attempt as a failed ``runs`` row, then queue the episode again
        (first in line, avoiding the actor it failed on) or give up after max attempts."""
        job = flight.job
        self.states.pop(flight.actor, None)
        self.recovering[flight.actor] = self.actors[flight.actor].where.remote()
        self.recovering_since[flight.actor] = time.monotonic()
        ep = evaldb.episode(self.mem, self.row.id, job.arg)
        error = f"ray attempt {job.attempt} of {self.max_attempts} on actor {flight.actor}: {why}"
        run_id = self.mem.start_run(
            protocol=self.row.config.protocol, model=self.row.config.model,
            scope=ep.scope(self.row.config.agent, self.env_name),
            trials_requested=ep.trials,
            config={"eval_id": self.row.id, "episode": job.arg, "phase": ep.phase,
                    "executor": "ray", "attempt": job.attempt, "actor": flight.actor})
        self.mem.finish_run(run_id, "failed", error)
        if job.attempt >= self.max_attempts:
            raise RuntimeError(f"episode {job.arg} failed {job.attempt} times; last: {why}")
        queue.insert(0, _Job(job.kind, job.arg, job.attempt + 1, job.avoid | {flight.actor}))

    def _poll_status(self, flying: dict[int, _Flight]) -> None:
        if not self.on_progress or not flying:
            return
        refs = {i: self.actors[i].status.remote() for i in flying}
        ready, _ = ray.wait(list(refs.values()), num_returns=len(refs), timeout=0.2)
        for i, ref in refs.items():
            if ref in ready:
                try:
                    state: dict[str, Any] = ray.get(ref)
                except ACTOR_FAULTS:
                    self.states.pop(i, None)
                    continue
                if state:  # empty: the episode ended, its rows are on their way
                    self.states[i] = state

    def report(self) -> None:
        if not self.on_progress:
            return
        done, running = evaldb.progress(self.mem, self.row.id)
        for st in self.states.values():
            if st.get("key"):
                done += st.get("done", 0)
                running.append(f"{st['task']} v{st['variation']} trial {st['trial']} "
                               f"step {st['step']}")
        self.high = max(self.high, min(done, self.total))  # a retried episode never goes back
        self.on_progress(Progress(eval_id=self.row.id, done=self.high,
                                  total=self.total, running=running, phase=self.current))

    # ------------------------------------------------------------------ meta-memories
    def _run_meta(self, meta: MetaPlan) -> None:
        """Summarise on an actor (the LLM call and the target's description), store here."""
        target = meta.key.split("/", 1)[1]
        first = list(self.mem.db.query(
            "SELECT variation FROM eval_episodes WHERE eval_id = ? AND task = ? AND "
            "phase = 'test' ORDER BY id LIMIT 1", [self.row.id, target]))
        for attempt in range(1, self.max_attempts + 1):
            actor = self.actors[(attempt - 1) % len(self.actors)]
            try:
                text = target
                if first:
                    described: str = ray.get(
                        actor.describe.remote(target, first[0]["variation"]),
                        timeout=self.timeout_s)
                    text = described
                build_meta(mem=self.mem, llm=RemoteLLM(actor, self.timeout_s),
                           eval_id=self.row.id, cfg=self.row.config, meta=meta, target=text,
                           env_name=self.env_name)
                return
            except (*ACTOR_FAULTS, GetTimeoutError) as exc:
                if attempt == self.max_attempts:
                    raise RuntimeError(f"meta-memory {meta.key} failed {attempt} times: "
                                       f"{type(exc).__name__}") from None

    # ------------------------------------------------------------------ local fallback
    def _run_local(self, job: _Job) -> None:
        """An episode that local workers left half-run (it has trials in this database) is
        finished in the driver, so its completed trials are kept, as ``--resume`` promises."""
        if self.local is None:
            self.local = (self.env_factory(), self.llm_factory())
        env, llm = self.local
        run_job(self.mem, env, llm, self.row.id, job.kind, job.arg,
                on_step=lambda _ev: self.report())

    def close(self, ok: bool) -> None:
        for actor in self.actors:
            ray.kill(actor, no_restart=True)
        self.actors = []
        if self.local is not None:
            self.local[0].close()
            self.local = None
        if self.started_ray:
            ray.shutdown()

