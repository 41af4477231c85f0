"""The offline model's life cycle under stress: open/close cycles, and signals to `clin run`.

``cycles``: the offline model (``LocalLlama``) opened and closed N times, without a call
between (``--mode no-call``) or with one (``--mode call``), optionally with every core kept
busy by spinning processes (``--busy``). Cycles run in a child process that reports each one;
a cycle that takes longer than ``--hang-s`` counts as a hang (the child is killed and a new
one goes on). ``--mode raw`` does the same with xllamacpp's own ``Server`` and no wait for
its task loop: the upstream behaviour that ``clin.llm.local.start_server`` works around
(docs/upstream/xllamacpp-stop-before-loop.md).

``signals``: SIGINT or SIGTERM (chosen at random) delivered to a real ``clin run --model
local`` on the real ScienceWorld at a random moment; the time from the signal to the exit
must stay under ``--limit-s``, and after every exit the database must pass
``stress.checks.check_db`` (integrity_check ok, whole trials) and hold no run left
``running``. Each invocation resumes the run the last one left.

    .venv/bin/python stress/model_lifecycle.py cycles --mode no-call --busy -n 100
    .venv/bin/python stress/model_lifecycle.py signals -n 50
"""

from __future__ import annotations

import argparse
import json
import os
import random
import select
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from stress.checks import check_db
from stress.kill_resume import CLI, children_of, reap_orphans

CHILD = r"""
import os, sys, time
mode, n = sys.argv[1], int(sys.argv[2])
from clin.llm import guard
guard.ALLOW_MODEL_REQUESTS = True
from clin.llm.base import Message
from clin.llm.local import LocalLlama, default_model_path, server_params
for i in range(n):
    t0 = time.monotonic()
    if mode == "raw":
        import xllamacpp
        p = server_params(default_model_path(), host=f"/tmp/clin-raw-{os.getpid()}-{i}.sock",
                          n_ctx=512, n_threads=1)
        server = xllamacpp.Server(p)
        t1 = time.monotonic()
        del server
    else:
        llm = LocalLlama(n_ctx=512)
        if mode == "call":
            llm.complete([Message(role="user", content="Say hi.")], max_tokens=4)
        t1 = time.monotonic()
        llm.close()
    print(f"{i} {t1 - t0:.3f} {time.monotonic() - t1:.3f}", flush=True)
"""


@contextmanager
def busy_cores(on: bool):
    """Every core of this machine kept busy by a spinning process, for the block."""
    procs = []
    if on:
        for _ in range(os.cpu_count() or 1):
            procs.append(subprocess.Popen([sys.executable, "-c", "while True: pass"]))
    try:
        yield len(procs)
    finally:
        for p in procs:
            p.kill()
            p.wait()


def cycles(n: int, mode: str, busy: bool, hang_s: float) -> dict:
    """Open/close ``n`` times in child processes; count hangs and slow closes."""
    figures = {"mode": mode, "busy_processes": 0, "cycles": 0, "hangs": 0,
               "close_max_s": 0.0, "close_over_10s": 0, "open_median_s": None}
    opens: list[float] = []
    with busy_cores(busy) as figures["busy_processes"]:
        while figures["cycles"] + figures["hangs"] < n:
            left = n - figures["cycles"] - figures["hangs"]
            proc = subprocess.Popen([sys.executable, "-c", CHILD, mode, str(left)],
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                    cwd=ROOT)
            fd = proc.stdout.fileno()
            buf, deadline = "", time.monotonic() + hang_s + 10  # + start-up
            while True:
                ready, _, _ = select.select([fd], [], [], 0.05)
                chunk = os.read(fd, 4096).decode() if ready else ""
                buf += chunk
                while "\n" in buf:
                    line, buf = buf.split("\n", 1)
                    _, t_open, t_close = line.split()
                    opens.append(float(t_open))
                    figures["cycles"] += 1
                    figures["close_max_s"] = max(figures["close_max_s"], float(t_close))
                    figures["close_over_10s"] += float(t_close) > 10
                    deadline = time.monotonic() + hang_s
                if proc.poll() is not None and not chunk:
                    break
                if time.monotonic() > deadline:
                    proc.kill()
                    proc.wait()
                    figures["hangs"] += 1
                    break
            proc.stdout.close()
            if proc.returncode not in (0, -signal.SIGKILL):
                raise SystemExit(f"cycle child exited {proc.returncode}")
    opens.sort()
    figures["open_median_s"] = round(opens[len(opens) // 2], 3) if opens else None
    figures["close_max_s"] = round(figures["close_max_s"], 3)
    return figures


def _moment(db: Path, log: str, before: int) -> str:
    """What the run was doing when the signal came, read from its output and the database."""
    if "model:" not in log:
        return "start-up (imports, JVM, model load)"
    if not db.exists():
        return "start-up (imports, JVM, model load)"
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        row = conn.execute(
            "SELECT t.id, t.steps, (SELECT count(*) FROM steps s WHERE s.trial_id = t.id), "
            "(SELECT r.config FROM runs r WHERE r.id = t.run_id) FROM trials t "
            "WHERE t.id > ? ORDER BY t.id DESC LIMIT 1", [before]).fetchone()
    finally:
        conn.close()
    if row is None:
        return "before the first trial"
    _, _, steps, config = row
    max_steps = json.loads(config or "{}").get("settings", {}).get("max_steps")
    if steps == 0:
        return "first call"
    if max_steps is not None and steps >= max_steps:
        return "reflection"
    return "mid-trial"


def signals(n: int, limit_s: float, max_delay: float, seed: int, db: Path) -> dict:
    rng = random.Random(seed)
    figures = {"deliveries": 0, "SIGINT": 0, "SIGTERM": 0, "exits_over_limit": 0,
               "exit_max_s": 0.0, "finished_before_signal": 0, "checks_ok": 0,
               "exit_codes": {}, "moments": {}, "orphans_killed": 0}
    args = ["run", "--task", "grow-plant", "--trials", "2", "--max-steps", "4",
            "--model", "local", "--db", str(db), "--resume"]
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("OPENAI_API_KEY", None)
    logs = Path(tempfile.mkdtemp(prefix="lifecycle_"))
    exits: list[float] = []
    while figures["deliveries"] < n:
        before = 0
        if db.exists():
            conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
            try:
                before = conn.execute("SELECT ifnull(max(id), 0) FROM trials").fetchone()[0]
            except sqlite3.OperationalError:
                before = 0
            finally:
                conn.close()
        log_path = logs / f"run{figures['deliveries'] + 1:03d}.log"
        with open(log_path, "wb") as out:
            proc = subprocess.Popen([*CLI, *args], stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=env, cwd=ROOT)
            delay = rng.uniform(0.2, max_delay)
            try:
                proc.wait(timeout=delay)
                figures["finished_before_signal"] += 1
                check_db(db)
                continue
            except subprocess.TimeoutExpired:
                pass
            sig = rng.choice([signal.SIGINT, signal.SIGTERM])
            children = children_of(proc.pid)
            moment = _moment(db, log_path.read_text(errors="replace"), before)
            t0 = time.monotonic()
            proc.send_signal(sig)
            try:
                rc = proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                rc = proc.wait()
            took = time.monotonic() - t0
        figures["orphans_killed"] += reap_orphans(children, wait_s=5)
        name = signal.Signals(sig).name
        figures["deliveries"] += 1
        figures[name] += 1
        exits.append(took)
        figures["exit_max_s"] = round(max(figures["exit_max_s"], took), 2)
        figures["exits_over_limit"] += took > limit_s
        key = f"{name}->{rc}"
        figures["exit_codes"][key] = figures["exit_codes"].get(key, 0) + 1
        figures["moments"][moment] = figures["moments"].get(moment, 0) + 1
        check_db(db)
        conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
        try:
            (running,) = conn.execute(
                "SELECT count(*) FROM runs WHERE status = 'running'").fetchone()
        except sqlite3.OperationalError:
            running = 0  # signalled before the schema existed
        finally:
            conn.close()
        if running:
            raise SystemExit(f"delivery {figures['deliveries']} ({name}, {moment}) left a run "
                             f"'running'; log: {log_path}")
        figures["checks_ok"] += 1
    exits.sort()
    figures["exit_median_s"] = round(exits[len(exits) // 2], 2) if exits else None
    figures["logs"] = str(logs)
    return figures


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="what", required=True)
    c = sub.add_parser("cycles", help="open/close the offline model N times")
    c.add_argument("--mode", choices=["no-call", "call", "raw"], default="no-call")
    c.add_argument("--busy", action="store_true", help="keep every core busy meanwhile")
    c.add_argument("-n", type=int, default=100)
    c.add_argument("--hang-s", type=float, default=30.0,
                   help="a cycle taking longer than this is a hang")
    s = sub.add_parser("signals", help="SIGINT/SIGTERM a real `clin run` N times")
    s.add_argument("-n", type=int, default=50)
    s.add_argument("--limit-s", type=float, default=10.0)
    s.add_argument("--max-delay", type=float, default=40.0,
                   help="signal after 0.2..MAX_DELAY seconds, uniformly at random")
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--db", type=Path, default=None, help="default: a new temporary file")
    for p in (c, s):
        p.add_argument("--json", action="store_true", help="print the figures as JSON")
    a = ap.parse_args()
    t0 = time.monotonic()
    if a.what == "cycles":
        figures = cycles(a.n, a.mode, a.busy, a.hang_s)
    else:
        db = a.db or Path(tempfile.mkdtemp(prefix="lifecycle_db_")) / "clin.db"
        figures = signals(a.n, a.limit_s, a.max_delay, a.seed, db)
        figures["db"] = str(db)
    figures["seconds"] = round(time.monotonic() - t0, 1)
    figures["load_average"] = os.getloadavg()[0]
    print(json.dumps(figures, sort_keys=True) if a.json else figures)


if __name__ == "__main__":
    main()
