"""Eval throughput: episodes per minute with 1, 2 and 4 workers, local processes vs Ray actors,
in one run, against a local OpenAI-compatible fake server that answers after a fixed delay
(an LLM-bound load, as real runs are). Memory per worker (its JVM + its Python) is sampled
from /proc while the episodes run.

Throughput counts from the first episode's start to the last episode's end as stored in
``eval_episodes`` (start-up of the pool, i.e. JVMs and Ray, is reported separately).
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from clin.memory import Memory

from .stats import BenchTable

WORKERS = (1, 2, 4)
DELAY_S = 1.0
EPISODES_PER_WORKER = 2
TASK = "find-living-thing"
STEPS = 2  # per episode (one trial): STEPS controller calls + one reflection


@dataclass
class ScaleRun:
    executor: str
    workers: int
    episodes: int
    wall_s: float  # run_eval end to end, pool start-up included
    work_s: float  # first episode start -> last episode end
    calls: int
    rss_python_mb: float = 0.0  # per worker, mean over workers, peak over samples
    rss_java_mb: float = 0.0

    @property
    def per_min(self) -> float:
        return 60.0 * self.episodes / self.work_s if self.work_s else 0.0


# ---------------------------------------------------------------------- /proc sampling
def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _workers(executor: str) -> list[int]:
    """Root pids of the eval's workers: pool processes below this one, or Ray actors."""
    if executor == "local":
        return [p for p in _children(os.getpid()) if "spawn_main" in _cmdline(p)]
    return [int(p.name) for p in Path("/proc").iterdir()
            if p.name.isdigit() and _cmdline(int(p.name)).startswith("ray::EpisodeActor")]


def _tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += _children(p)
    return out


@dataclass
class Sampler:
    """Peak per-worker RSS, split into Java processes and the rest (Python)."""

    executor: str
    python: list[float] = field(default_factory=list)
    java: list[float] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.wait(1.0):
            roots = self._roots()
            if not roots:
                continue
            py = jv = 0.0
            for root in roots:
                for p in _tree(root):
                    if "java" in _cmdline(p).split(" ")[0]:
                        jv += _rss_mb(p)
                    else:
                        py += _rss_mb(p)
            self.python.append(py / len(roots))
            self.java.append(jv / len(roots))

    def _roots(self) -> list[int]:
        return _workers(self.executor)


# ---------------------------------------------------------------------- one run
def run_scale(executor: str, workers: int, base_url: str, tmp: Path) -> ScaleRun:
    from clin.trials.eval import Execution, run_eval
    from clin.trials.protocols import EvalConfig

    episodes = EPISODES_PER_WORKER * workers
    cfg = EvalConfig(protocol="adapt", tasks=[TASK], test_variations=episodes, trials=1,
                     max_steps=STEPS, model="openai:fake", base_url=base_url)
    db = tmp / f"{executor}-{workers}.db"
    sampler = Sampler(executor)
    thread = threading.Thread(target=sampler.run, daemon=True)
    thread.start()
    start = time.perf_counter()
    try:  # "local": a Ray of its own, never a cluster that happens to run here
        run_eval(db, cfg, execution=Execution(
            workers=workers, executor=executor,
            ray_address="local" if executor == "ray" else None))
    finally:
        sampler.stop.set()
        thread.join()
    wall = time.perf_counter() - start
    with Memory(db) as mem:
        first, last = mem.db.execute(
            "SELECT min(started_at), max(finished_at) FROM eval_episodes").fetchone()
        calls = mem.db.execute("SELECT count(*) FROM llm_calls").fetchone()[0]
    work = (datetime.fromisoformat(last) - datetime.fromisoformat(first)).total_seconds()
    return ScaleRun(executor, workers, episodes, wall, work, calls,
                    max(sampler.python, default=0.0), max(sampler.java, default=0.0))


def run_all(executors: tuple[str, ...] = ("local", "ray")) -> list[ScaleRun]:
    from tests.support.fake_openai import FakeOpenAI

    os.environ.setdefault("OPENAI_API_KEY", "sk-bench-fake")
    runs = []
    with FakeOpenAI(delay_s=DELAY_S) as srv, tempfile.TemporaryDirectory() as tmp:
        for executor in executors:
            for n in WORKERS:
                try:
                    runs.append(run_scale(executor, n, srv.url, Path(tmp)))
                except Exception as exc:  # noqa: BLE001 - keep the other figures
                    print(f"{executor} x{n} failed: {type(exc).__name__}: {exc}", flush=True)
                    continue
                print(f"{executor} x{n}: {runs[-1]}", flush=True)
    return runs


def scale_table(runs: list[ScaleRun]) -> BenchTable:
    base = {r.executor: r.per_min for r in runs if r.workers == 1}
    rows = []
    for r in runs:
        speedup = r.per_min / base[r.executor] if base.get(r.executor) else 0.0
        rows.append([r.executor, str(r.workers), str(r.episodes), f"{r.per_min:.1f}",
                     f"{speedup:.2f}x", f"{r.work_s:.1f}", f"{r.wall_s:.1f}",
                     f"{r.calls / r.episodes:.1f}", f"{r.rss_python_mb:.0f}",
                     f"{r.rss_java_mb:.0f}"])
    return BenchTable(
        key="scale",
        title=f"6. Eval scaling: episodes/min, LLM answering after {DELAY_S:g} s "
              "(fake OpenAI server), local processes vs Ray actors",
        columns=["executor", "workers", "episodes", "episodes/min", "vs 1 worker",
                 "episodes s", "wall s", "LLM calls/episode", "RSS/worker Python MB",
                 "RSS/worker Java MB"],
        rows=rows,
        notes=[(f"ADAPT, {TASK}, 1 trial x {STEPS} steps per episode ({EPISODES_PER_WORKER} episodes "
               "per worker); 'episodes s' is first episode start to last episode end, "
               "'wall s' adds the pool start-up (JVMs; for Ray also the local Ray start)."),
               ("RSS per worker: peak of the mean over workers, sampled every second from "
               "/proc (Python process incl. Ray's worker runtime; Java = its ScienceWorld JVM).")],
    )
