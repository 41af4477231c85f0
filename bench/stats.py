"""Small statistics and table helpers shared by the benchmarks, so each benchmark module only
says what it measures."""

from __future__ import annotations

import math
import os
import platform
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100); NaN for no data, so an empty run shows
    as missing instead of as a flattering zero."""
    if not values:
        return math.nan
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def median(values: Sequence[float]) -> float:
    return percentile(values, 50)


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def common_prefix_len(a: str, b: str) -> int:
    """Length of the longest common prefix of two strings (characters)."""
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"


@dataclass
class BenchTable:
    """One result table: printed with rich, written to RESULTS.md as markdown. ``notes`` hold
    target verdicts and caveats that belong next to the numbers."""

    key: str  # perf | prompts | local | sim
    title: str
    columns: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        lines = [
            "| " + " | ".join(self.columns) + " |",
            "|" + "|".join("---" for _ in self.columns) + "|",
        ]
        lines += ["| " + " | ".join(r) + " |" for r in self.rows]
        if self.notes:
            lines.append("")
            lines += [f"- {n}" for n in self.notes]
        return "\n".join(lines)


def machine() -> str:
    """Cores, RAM and Python, as quoted next to every figure."""
    try:
        mem = subprocess.run(
            ["free", "-h"], capture_output=True, text=True, check=True
        ).stdout.splitlines()[1].split()[1]
    except (OSError, subprocess.CalledProcessError, IndexError):
        mem = "?"
    return (
        f"nproc={len(os.sched_getaffinity(0))}, RAM {mem} (free -h), {platform.machine()}, "
        f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f} "
        "at the end"
    )
