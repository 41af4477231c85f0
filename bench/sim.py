"""ScienceWorld throughput: steps/s with 1, 2 and 4 episodes in parallel, each in its own
process with its own JVM (the only way to run episodes in parallel), and the start-up time
to the first action (JVM start, task load and reset through our adapter).

Workers start their simulators first, then step together from a barrier, so the stepping
phase of all N episodes overlaps and start-up noise is kept out of the throughput.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from dataclasses import dataclass
from typing import Any

from .stats import BenchTable, median

TASK = "grow-plant"
DEFAULT_STEPS = 60
WARMUP_STEPS = 22  # two laps of the cycle before timing: the JVM's JIT is cold at first
PARALLEL = (1, 2, 4)
# A loop through three rooms that never ends the episode (no focus), including the
# greenhouse and kitchen, where the valid-action lists are long.
CYCLE = (
    "look around", "teleport to kitchen", "look around", "look at counter", "inventory",
    "teleport to greenhouse", "look around", "look at flower pot 1", "wait1",
    "teleport to hallway", "look around",
)


@dataclass
class WorkerResult:
    startup_s: float
    steps: int
    stepping_s: float


def _worker(steps: int, barrier: Any, out: Any) -> None:
    from clin.envs.scienceworld import ScienceWorld

    t0 = time.perf_counter()
    env = ScienceWorld()
    try:
        env.reset(TASK, 0)
        startup = time.perf_counter() - t0
        for i in range(WARMUP_STEPS):
            env.step(CYCLE[i % len(CYCLE)])
        barrier.wait()
        t1 = time.perf_counter()
        for i in range(steps):
            env.step(CYCLE[(WARMUP_STEPS + i) % len(CYCLE)])
        out.put(WorkerResult(startup, steps, time.perf_counter() - t1))
    finally:
        env.close()


def measure(n: int, steps: int) -> list[WorkerResult]:
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(n)
    out = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(steps, barrier, out)) for _ in range(n)]
    for p in procs:
        p.start()
    results = [out.get(timeout=600) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        if p.exitcode != 0:
            raise RuntimeError(f"simulator worker exited with {p.exitcode}")
    return results


def sim_table(steps: int = DEFAULT_STEPS, parallel: tuple[int, ...] = PARALLEL) -> BenchTable:
    rows = []
    base: float | None = None
    for n in parallel:
        res = measure(n, steps)
        total = sum(r.steps for r in res) / max(r.stepping_s for r in res)
        base = base or total
        rows.append([
            str(n),
            f"{total:.1f}",
            f"{median([r.steps / r.stepping_s for r in res]):.1f}",
            f"{total / base:.2f}x",
            f"{median([r.stepping_s * 1000 / r.steps for r in res]):.0f}",
            f"{median([r.startup_s for r in res]):.1f}",
            f"{max(r.startup_s for r in res):.1f}",
        ])
    return BenchTable(
        key="sim",
        title="4. ScienceWorld throughput (grow-plant 0, `easy`)",
        columns=["episodes", "total steps/s", "steps/s per episode", "scaling",
                 "ms per step", "median start-up s", "max start-up s"],
        rows=rows,
        notes=[
            (f"{steps} steps per episode cycling {len(CYCLE)} actions through kitchen, "
            "greenhouse and hallway via our adapter (valid actions, look and inventory "
            f"fetched every step, as the agent needs them), timed after {WARMUP_STEPS} "
             "warm-up steps."),
            ("Start-up = new process's JVM start + task check + load + reset, until the "
            "first action can be sent; with N > 1 the JVMs start at the same time and "
            "compete for the cores."),
        ],
    )
