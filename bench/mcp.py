"""``python -m bench mcp``: ``clin mcp`` over stdio, driven by the official SDK client as a
real agent would: start-up until the tools are listed, each tool's latency once warm (client
side, JSON-RPC over pipes included), and the server's resident memory (issue 19)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .stats import BenchTable, median, percentile

STARTS = 5
CALLS = 100
SEED_LEARNINGS = 300
TRACE = [{"action": f"step {i}", "observation": "You see a kettle, a cup and a tea bag."}
         for i in range(10)]
ANSWER = "boiling water SHOULD BE NECESSARY to making tea\n" \
         "adding sugar DOES NOT CONTRIBUTE to making tea"


@dataclass
class McpRun:
    starts_s: list[float] = field(default_factory=list)
    calls_ms: dict[str, list[float]] = field(default_factory=dict)
    rss_start_mib: float = 0.0
    rss_end_mib: float = 0.0
    learnings: int = 0
    uptime_before: str = ""
    uptime_after: str = ""


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True,
                              timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return f"load average {os.getloadavg()}"


def _server_pid() -> int | None:
    """The ``clin mcp`` child of this process (the SDK does not expose its pid)."""
    me = str(os.getpid())
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if stat[1] == me and b"mcp" in cmd:
            return int(pid)
    return None


def _rss_mib(pid: int | None) -> float:
    if pid is None:
        return float("nan")
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _seed(db: Path) -> int:
    from clin.memory import Memory, Scope

    scope = Scope(namespace="bench", agent="bot", task="make tea")
    with Memory(db) as mem:
        for i in range(SEED_LEARNINGS):
            mem.add_learning(scope, f"using tool {i} MAY BE NECESSARY to finishing step {i % 40}")
    return SEED_LEARNINGS


async def _measure(db: Path, run: McpRun, calls: int, starts: int) -> None:
    from mcp import Client, StdioServerParameters
    from mcp.types import CreateMessageResult, TextContent

    clin = str(Path(sys.executable).with_name("clin"))
    params = StdioServerParameters(command=clin, args=["mcp", "--db", str(db)])

    async def sampling(ctx: Any, p: Any) -> CreateMessageResult:
        return CreateMessageResult(role="assistant", model="bench",
                                   content=TextContent(type="text", text=ANSWER))

    for _ in range(starts):
        t0 = time.perf_counter()
        async with Client(params, read_timeout_seconds=60) as client:
            await client.list_tools()
            run.starts_s.append(time.perf_counter() - t0)

    scope = {"namespace": "bench", "agent": "bot", "task": "make tea"}
    n = 0

    async def timed(name: str, fn: Callable[[], Awaitable[Any]]) -> None:
        for i in range(calls + 3):
            t0 = time.perf_counter()
            result = await fn()
            ms = (time.perf_counter() - t0) * 1e3
            if getattr(result, "is_error", False):
                raise RuntimeError(f"{name} failed: {result.content}")
            if i >= 3:  # warm-up
                run.calls_ms.setdefault(name, []).append(ms)

    for mode in ("legacy", "auto"):
        async with Client(params, sampling_callback=sampling, mode=mode,
                          read_timeout_seconds=60) as c:
            pid = _server_pid()
            if mode == "legacy":
                run.rss_start_mib = _rss_mib(pid)

                async def add() -> Any:
                    nonlocal n
                    n += 1
                    return await c.call_tool("add_learning", {
                        "scope": scope, "text": f"bench {n} MAY BE NECESSARY to making tea"})

                await timed("recall (k=10, query)", lambda: c.call_tool(
                    "recall", {"scope": scope, "query": "tool kettle step 7", "k": 10}))
                await timed("render (budget 300 tokens)", lambda: c.call_tool(
                    "render", {"scope": scope, "query": "tea", "budget_tokens": 300}))
                await timed("record_trial (10 steps)", lambda: c.call_tool(
                    "record_trial", {"scope": scope, "trace": TRACE, "score": 50}))
                await timed("add_learning", add)
                await timed("list_learnings (500 max)", lambda: c.call_tool(
                    "list_learnings", {"scope": scope}))
            label = ("2025-11-25 handshake: sampling request" if mode == "legacy"
                     else "2026-07-28: input-required round")

            async def reflect() -> Any:
                await c.call_tool("record_trial", {"scope": scope, "trace": TRACE, "score": 80})
                return await c.call_tool("reflect", {"scope": scope})

            await timed(f"record_trial + reflect ({label})", reflect)
            if mode == "auto":
                run.rss_end_mib = _rss_mib(pid)


def run_mcp(calls: int = CALLS, starts: int = STARTS) -> McpRun:
    import anyio

    run = McpRun(uptime_before=_uptime())
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        run.learnings = _seed(db)
        anyio.run(_measure, db, run, calls, starts)
    run.uptime_after = _uptime()
    return run


def mcp_table(run: McpRun) -> BenchTable:
    rows = [["start-up to tools listed (s)", f"{median(run.starts_s):.2f}",
             f"{percentile(run.starts_s, 95):.2f}", f"{max(run.starts_s):.2f}",
             str(len(run.starts_s))]]
    for name, ms in run.calls_ms.items():
        rows.append([f"{name} (ms)", f"{median(ms):.1f}", f"{percentile(ms, 95):.1f}",
                     f"{max(ms):.1f}", str(len(ms))])
    notes = [
        (f"Server resident memory (VmRSS): {run.rss_start_mib:.0f} MiB connected and idle, "
        f"{run.rss_end_mib:.0f} MiB after every call above."),
        (f"Memory seeded with {run.learnings} learnings in the scope called (recall and render "
        "rank them all); the SDK client (`mcp.Client`) over stdio, a new `clin mcp` per "
        "start-up; latency is the client's wall clock per call after 3 warm-up calls, "
        "JSON-RPC and pipes included. Reflection is answered at once by the client's "
        "sampling callback, so its row is the server's own cost (prompt, merge, two calls)."),
        f"`uptime` before: {run.uptime_before}",
        f"`uptime` after: {run.uptime_after}",
    ]
    return BenchTable(
        key="mcp",
        title="9. MCP server (`clin mcp` over stdio, issue 19): start-up, per-call latency, "
              "memory",
        columns=["what", "median", "p95", "max", "n"],
        rows=rows, notes=notes,
    )
