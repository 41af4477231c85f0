"""The offline backend's threads on idle and on busy cores (issue 14).

The same recorded controller calls (grow-plant 0 along the gold path, each with its enum
schema, as in ``bench backends``) through ``LocalLlama`` with one thread, with two, and with
the default (idle cores at load, back to one thread when a call stalls), first on idle
cores and then with every core taken by a busy process. In the last row the busy processes
start only after the first call, so the default has loaded with two threads and has to
notice the stall itself. A configuration stops taking new calls after ``ROW_BUDGET_S``: a
stalled one can take minutes per call.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

from clin import controller
from clin.envs.scienceworld import ScienceWorld
from clin.llm.base import Message
from clin.llm.cpu import usable_cpus
from clin.llm.local import LocalLlama

from .backends import record_prompts
from .stats import BenchTable, median

DEFAULT_CALLS = 6
ROW_BUDGET_S = 90.0


@contextmanager
def busy_cores(n: int) -> Iterator[None]:
    """``n`` processes that each keep one core busy, stopped on exit."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        yield
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()


@dataclass
class Row:
    threads: str  # "1", "2" or "default"
    load: str  # none | all cores | all cores after call 1
    walls: list[float]
    threads_at_load: int
    threads_at_end: int


def run_row(calls: list[Any], threads: int | None, busy: int, busy_after_first: bool) -> Row:
    label = "default" if threads is None else str(threads)
    load = ("none" if not busy else
            f"{busy} busy processes" + (" from call 2" if busy_after_first else ""))
    walls: list[float] = []
    with ExitStack() as stack:
        if busy and not busy_after_first:
            stack.enter_context(busy_cores(busy))
        llm = stack.enter_context(LocalLlama(n_threads=threads))
        at_load = llm.n_threads
        t_row = time.perf_counter()
        for i, (messages, schema) in enumerate(calls):
            if i and time.perf_counter() - t_row > ROW_BUDGET_S:
                break
            if i == 1 and busy and busy_after_first:
                stack.enter_context(busy_cores(busy))
            t0 = time.perf_counter()
            llm.complete([Message(**m) for m in messages], json_schema=schema,
                         max_tokens=controller.ANSWER_TOKENS)
            walls.append(time.perf_counter() - t0)
        return Row(label, load, walls, at_load, llm.n_threads)


def run_threads(env: ScienceWorld, calls: int = DEFAULT_CALLS) -> list[Row]:
    recorded = record_prompts(env, calls)["steps"]
    cores = len(usable_cpus())
    rows = []
    for busy, after in ((0, False), (cores, False), (cores, True)):
        for threads in ((None,) if after else (1, 2, None)):
            rows.append(run_row(recorded, threads, busy, after))
    return rows


def threads_table(rows: list[Row], calls: int) -> BenchTable:
    return BenchTable(
        key="threads",
        title="8b. Offline backend threads on idle and busy cores (issue 14)",
        columns=["threads asked", "other load", "calls done", "median s/call", "max s/call",
                 "threads at load", "threads at end"],
        rows=[[r.threads, r.load, f"{len(r.walls)}/{calls}", f"{median(r.walls):.2f}",
               f"{max(r.walls):.2f}", str(r.threads_at_load), str(r.threads_at_end)]
              for r in rows],
        notes=[
            (f"{calls} recorded controller calls of grow-plant 0 (gold path, enum schema), "
            "SmolLM2-135M, temperature 0, prefix cache on, wall seconds per call; a row stops "
            f"taking calls after {ROW_BUDGET_S:.0f} s."),
            ("default: threads = idle cores when the model loads (sampled from /proc/stat, at "
            "most 4); a call decoding 4x slower than the best one reloads it with 1 thread."),
        ],
    )
