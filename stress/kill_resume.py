"""SIGKILL ``clin run`` at random moments and resume it with ``--resume``, N times.

Each invocation is the real CLI in a subprocess, talking to the local fake OpenAI server
(``tests/fake_openai.py``, faults at ``--fault-rate``). After every kill the database must
pass :func:`stress.checks.check_db` (integrity_check ok, no trial half-written as complete);
every resumed invocation must either be killed again or exit 0. When a run finishes, it
must hold exactly the trials asked for, and the next invocation starts a new run.

    .venv/bin/python stress/kill_resume.py              # 50 kills
    .venv/bin/python stress/kill_resume.py --kills 3 --json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from stress.checks import check_db, check_finished_runs
from tests.fake_openai import ALL_FAULTS, FakeOpenAI

CLI = [sys.executable, "-c", "import sys; from clin.cli import main; sys.exit(main())"]


def children_of(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def reap_orphans(pids: list[int], wait_s: float = 10.0) -> int:
    """The JVM dies with its parent (py4j die_on_exit); give it ``wait_s``, then kill it.
    Returns how many had to be killed."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.1)
    stuck = [p for p in pids if _alive(p)]
    for p in stuck:
        os.kill(p, signal.SIGKILL)
    return len(stuck)


def _marks(db: Path) -> tuple[int, int, int]:
    """Highest trial, step and LLM call ids: what an invocation has written so far."""
    import sqlite3

    if not db.exists():
        return (0, 0, 0)
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'llm_calls'").fetchone():
            return (0, 0, 0)
        return tuple(conn.execute(f"SELECT ifnull(max(id), 0) FROM {t}").fetchone()[0]
                     for t in ("trials", "steps", "llm_calls"))
    finally:
        conn.close()


def _phase(db: Path, before: tuple[int, int, int]) -> str:
    """Where a kill landed: before the invocation wrote anything (start-up: imports, JVM,
    task check), inside a trial it started, or between trials."""
    import sqlite3

    if _marks(db) == before:
        return "startup"
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        running = conn.execute("SELECT 1 FROM trials WHERE status = 'running' AND id > ?",
                               [before[0]]).fetchone()
        return "mid_trial" if running else "between_trials"
    finally:
        conn.close()


def stress(
    *,
    kills: int,
    db: Path,
    task: str = "find-living-thing",
    trials: int = 3,
    max_steps: int = 3,
    fault_rate: float = 0.2,
    max_delay: float = 10.0,
    min_delay: float = 0.2,
    seed: int = 1,
    log_dir: Path | None = None,
) -> dict:
    rng = random.Random(seed)
    log_dir = log_dir or Path(tempfile.mkdtemp(prefix="kill_resume_"))
    faults = tuple(f for f in ALL_FAULTS if f != "timeout")  # the CLI client waits 60 s
    figures = {"kills": 0, "resumes": 0, "clean_resumes": 0, "runs_finished": 0,
               "invocations": 0, "orphans_killed": 0, "checks": 0,
               "killed_in": {"startup": 0, "between_trials": 0, "mid_trial": 0}}
    with FakeOpenAI(fault_rate=fault_rate, seed=seed, faults=faults) as srv:
        args = ["run", "--task", task, "--trials", str(trials), "--max-steps", str(max_steps),
                "--model", "openai:fake", "--base-url", srv.url, "--db", str(db), "--resume"]
        env = {**os.environ, "OPENAI_API_KEY": "sk-stress-not-a-key", "NO_COLOR": "1"}
        env.pop("OPENAI_BASE_URL", None)
        after_kill = False
        while True:
            finishing = figures["kills"] >= kills
            n = figures["invocations"] = figures["invocations"] + 1
            before = _marks(db)
            out = open(log_dir / f"run{n:03d}.log", "wb")  # noqa: SIM115 - closed below
            proc = subprocess.Popen([*CLI, *args], stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=env, cwd=ROOT)
            if after_kill:
                figures["resumes"] += 1
            delay = None if finishing else rng.uniform(min_delay, max_delay)
            try:
                rc = proc.wait(timeout=delay if delay is not None else 600)
            except subprocess.TimeoutExpired:
                children = children_of(proc.pid)
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                out.close()
                figures["orphans_killed"] += reap_orphans(children)
                figures["kills"] += 1
                if after_kill:
                    figures["clean_resumes"] += 1  # it ran until we killed it again
                after_kill = True
                check_db(db)
                figures["checks"] += 1
                figures["killed_in"][_phase(db, before)] += 1
                continue
            out.close()
            if rc != 0:
                tail = (log_dir / f"run{n:03d}.log").read_text(errors="replace")[-2000:]
                raise SystemExit(f"invocation {n} exited {rc} (not killed):\n{tail}")
            if after_kill:
                figures["clean_resumes"] += 1
            after_kill = False
            check_db(db)
            figures["runs_finished"] = check_finished_runs(db, trials)
            figures["checks"] += 1
            if finishing:
                break
        figures["llm"] = srv.stats()
    final = check_db(db)
    runs_finished = check_finished_runs(db, trials)
    import sqlite3

    conn = sqlite3.connect(db)
    try:
        (unfinished,) = conn.execute(
            "SELECT count(*) FROM runs WHERE status != 'finished'").fetchone()
        (attempts,) = conn.execute("SELECT ifnull(sum(attempts), 0) FROM llm_calls").fetchone()
    finally:
        conn.close()
    if unfinished:
        raise SystemExit(f"{unfinished} runs were left unfinished after the last resume")
    figures.update(runs_finished=runs_finished, final=final, llm_attempts_stored=attempts,
                   trials_per_run=trials, logs=str(log_dir))
    return figures


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kills", type=int, default=50)
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--max-steps", type=int, default=3)
    ap.add_argument("--task", default="find-living-thing")
    ap.add_argument("--fault-rate", type=float, default=0.2)
    ap.add_argument("--max-delay", type=float, default=10.0,
                    help="kill after MIN_DELAY..MAX_DELAY seconds, uniformly at random")
    ap.add_argument("--min-delay", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--db", type=Path, default=None, help="default: a new temporary file")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    a = ap.parse_args()
    db = a.db or Path(tempfile.mkdtemp(prefix="kill_resume_db_")) / "clin.db"
    t0 = time.monotonic()
    figures = stress(kills=a.kills, db=db, task=a.task, trials=a.trials, max_steps=a.max_steps,
                     fault_rate=a.fault_rate, max_delay=a.max_delay, min_delay=a.min_delay,
                     seed=a.seed)
    figures["seconds"] = round(time.monotonic() - t0, 1)
    figures["db"] = str(db)
    if a.json:
        print(json.dumps(figures, sort_keys=True))
    else:
        print(f"{figures['kills']} kills, {figures['clean_resumes']}/{figures['resumes']} clean "
              f"resumes, {figures['runs_finished']} runs finished with exactly {a.trials} "
              f"trials, {figures['checks']} integrity checks ok, "
              f"{figures['llm']['faults_injected']} LLM faults injected "
              f"({figures['seconds']} s; db {db})")


if __name__ == "__main__":
    main()
