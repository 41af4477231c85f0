"""CPU counting and the offline model's thread policy, apart from the llama.cpp backend that
uses them (``clin.llm.local``) and the eval pools that share cores out (``clin.trials``).

Why a policy at all: on idle cores a second llama.cpp thread makes a step ~1.7x faster, but
its threads wait for each other many times per token, and on cores other processes hold
some calls took 72-119 s instead of 2-13 s (bench/RESULTS.md, "Fresh clone"). So the thread
count defaults to ``$CLIN_LOCAL_THREADS`` if set, else to the cores idle when the model loads
(from /proc/stat over this process's CPUs, within a cgroup CPU quota); with that automatic
choice :class:`ThreadPolicy` halves the threads when a call stalls and, every
``RECHECK_CALLS`` calls, samples the idle cores again to go back up.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Any, TypeVar

from ..errors import ModelSpecError

MAX_AUTO_THREADS = 4  # the demo model (135M) gains little beyond; a model of your own: no cap
SLOW_FACTOR = 4.0  # a call decoding this much slower than the best one: back to one thread
RECHECK_CALLS = 10  # automatic threads below the idle cores: sample them again this often
THREADS_ENV = "CLIN_LOCAL_THREADS"
log = logging.getLogger(__name__)
T = TypeVar("T")


def usable_cpus() -> set[int]:
    """The CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return set(os.sched_getaffinity(0))
    return set(range(os.cpu_count() or 1))


def quota_cores() -> float | None:
    """The cgroup v2 CPU quota in cores (``cpu.max``: "200000 100000" is 2), if one is set."""
    try:
        with open("/sys/fs/cgroup/cpu.max") as f:
            quota, period = f.read().split()[:2]
        return None if quota == "max" else max(int(quota) / int(period), 1.0)
    except (OSError, ValueError):
        return None


def cpu_times(cpus: set[int]) -> tuple[int, int] | None:
    """(idle, total) jiffies summed over ``cpus``, from /proc/stat; None where there is none."""
    idle = total = 0
    try:
        with open("/proc/stat") as f:
            for line in f:
                name, *values = line.split()
                if not (name.startswith("cpu") and name[3:].isdigit()):
                    continue
                if int(name[3:]) in cpus:
                    fields = [int(x) for x in values]
                    idle += fields[3] + (fields[4] if len(fields) > 4 else 0)
                    total += sum(fields[:8])
    except (OSError, ValueError, IndexError):
        return None
    return (idle, total) if total else None


def idle_cores(sample_s: float = 0.25) -> float:
    """How many of this process's CPUs sat idle over a short sample, within the cgroup's CPU
    quota (all of them where /proc/stat is missing)."""
    cpus = usable_cpus()
    quota = quota_cores()
    cores = min(len(cpus), quota) if quota else len(cpus)
    before = cpu_times(cpus)
    time.sleep(sample_s)
    after = cpu_times(cpus)
    if before is None or after is None or after[1] <= before[1]:
        return float(cores)
    return min(cores, len(cpus) * (after[0] - before[0]) / (after[1] - before[1]))


def auto_threads(idle: float, cap: int = MAX_AUTO_THREADS) -> int:
    """Threads for ``idle`` idle cores: a core that is mostly busy elsewhere is not counted."""
    return max(1, min(cap, int(idle + 0.25)))


def default_threads(n: int) -> None:
    """Make ``n`` the thread count of offline models built from now on in this process (and
    its children), unless the user set one: for pools where each process has a share."""
    os.environ.setdefault(THREADS_ENV, str(min(MAX_AUTO_THREADS, max(1, n))))


def threads_from_env() -> int | None:
    """``$CLIN_LOCAL_THREADS`` as a thread count, or None when it is not set."""
    raw = os.environ.get(THREADS_ENV, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise ModelSpecError(f"{THREADS_ENV} must be a whole number of threads (1 or more), "
                             f"not {raw!r}; unset it to use the idle cores")
    return int(raw)


def too_slow(ms_per_token: float, best: float | None) -> bool:
    """Whether a call that decoded at ``ms_per_token`` shows threads stalling on busy cores."""
    return best is not None and ms_per_token > SLOW_FACTOR * best


class ThreadPolicy:
    """A model's thread count over its calls: ``watch`` each answered call's timings, and
    ``reload`` before the next call when it asked for another count. Threads the caller
    chose (``auto=False``) never change. A reload happens before the next call, never after
    one: the answer in hand is returned first."""

    def __init__(self, n_threads: int | None, max_threads: int) -> None:
        self.auto = n_threads is None
        self.max_threads = max_threads
        self.n_threads = (auto_threads(idle_cores(), max_threads) if n_threads is None
                          else max(1, n_threads))
        self.best_ms_per_token: float | None = None
        self.calls_since_change = 0  # calls since automatic threads last changed
        self.pending: int | None = None  # a reload due before the next call

    @property
    def due(self) -> bool:
        return self.pending is not None and self.pending != self.n_threads

    def reload(self, start: Callable[[int], T]) -> T | None:
        """``start(threads)`` with the count ``watch`` asked for (None when none is due); if
        that fails, ``start`` again with the count that worked."""
        threads, self.pending = self.pending, None
        if threads is None or threads == self.n_threads:
            return None
        before = self.n_threads
        try:
            self.n_threads = threads
            return start(threads)
        except ModelSpecError:
            log.warning("local model: could not reload with %d threads; keeping %d",
                        threads, before)
            self.n_threads = before
            return start(before)

    def watch(self, timings: dict[str, Any]) -> None:
        """With automatic threads: halve them when a call stalls, and every ``RECHECK_CALLS``
        calls below the idle cores' count, sample those again. A change is applied by the
        next ``reload``."""
        if not self.auto:
            return
        self.calls_since_change += 1
        n, ms = timings.get("predicted_n") or 0, timings.get("predicted_ms") or 0.0
        rate = ms / n if n >= 8 else None
        if self.n_threads > 1 and rate is not None and too_slow(rate, self.best_ms_per_token):
            self.pending = max(1, self.n_threads // 2)
            log.warning("local model: %d threads stall on busy cores (%.0f ms/token, best "
                        "%.0f); going to %d", self.n_threads, rate, self.best_ms_per_token,
                        self.pending)
            self.calls_since_change = 0
            return
        if rate is not None:
            self.best_ms_per_token = min(rate, self.best_ms_per_token or rate)
        if (self.calls_since_change % RECHECK_CALLS == 0
                and self.n_threads < min(self.max_threads, len(usable_cpus()))):
            threads = auto_threads(idle_cores(0.1), self.max_threads)
            if threads > self.n_threads:
                log.warning("local model: cores idle again; going to %d threads", threads)
                self.pending = threads
                self.calls_since_change = 0
