"""N processes write runs, trials, steps, LLM calls and learnings into one database at once.

All start together on a fresh file (so they also race to create it and apply migrations).
Each writer has its own scope and also merges learnings into one shared scope, so writers
contend for the same rows. Expected: zero "database is locked" errors, every row present,
shared learnings supported by every trial of every writer.

    .venv/bin/python stress/concurrent_writers.py                 # 4 writers, bigger sizes
    .venv/bin/python stress/concurrent_writers.py --runs 2 --json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sqlite3
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

LEARNINGS = 3


def _report(worker: int, shared: bool) -> object:
    from clin.memory import parse_learnings

    who = "everyone" if shared else f"writer {worker}"
    return parse_learnings("\n".join(
        f"step {i} of {who} MAY BE NECESSARY to finishing the stress task"
        for i in range(LEARNINGS)
    ))


def writer(db: str, worker: int, runs: int, trials: int, steps: int, start_at: float) -> dict:
    """One writer process; returns its counts (errors are counted, never raised)."""
    from clin.memory import Memory, Scope, StepRecord

    counts = {"writes": 0, "lock_errors": 0, "other_errors": 0, "errors": []}
    own = Scope(env="stress", task="write", variation=str(worker))
    shared = Scope(env="stress", task="write", variation="shared")
    time.sleep(max(0.0, start_at - time.time()))

    def count_error(exc: BaseException) -> None:
        kind = "lock_errors" if "locked" in str(exc) or "busy" in str(exc) else "other_errors"
        counts[kind] += 1
        counts["errors"].append(f"{type(exc).__name__}: {exc}"[:300])

    try:
        with Memory(db) as mem:
            for r in range(runs):
                run_id = mem.start_run(protocol="adapt", model="stress", scope=own,
                                       trials_requested=trials)
                counts["writes"] += 1
                for t in range(1, trials + 1):
                    trial_id = mem.start_trial(run_id, t, own)
                    counts["writes"] += 1
                    for s in range(1, steps + 1):
                        mem.add_step(trial_id, StepRecord(idx=s, action=f"act {worker}.{r}.{t}.{s}",
                                                          observation="x" * 200, score=s))
                        mem.add_llm_call(purpose="controller", model="stress", prompt_tokens=10,
                                         completion_tokens=2, latency_ms=1.0, run_id=run_id,
                                         trial_id=trial_id, step_idx=s, prompt="p", response="r")
                        counts["writes"] += 2
                    mem.finish_trial(trial_id, score=float(t), completed=False,
                                     stop_reason="step-limit", reflection=_report(worker, False),
                                     scope=own)
                    mem.apply_reflection(shared, _report(worker, True), trial_id=trial_id,
                                         score=float(t))
                    counts["writes"] += 2
                mem.finish_run(run_id, "finished")
                counts["writes"] += 1
    except Exception as exc:  # noqa: BLE001 - counted and reported, the test fails on it
        count_error(exc)
        counts["errors"].append(traceback.format_exc()[-1500:])
    return counts


def _entry(args: tuple, queue: mp.Queue) -> None:
    queue.put((args[1], writer(*args)))


def stress(*, db: Path, writers: int = 4, runs: int = 3, trials: int = 5,
           steps: int = 20) -> dict:
    ctx = mp.get_context("spawn")
    queue: mp.Queue = ctx.Queue()
    start_at = time.time() + 2.0  # after every interpreter has imported
    procs = [ctx.Process(target=_entry, args=((str(db), w, runs, trials, steps, start_at), queue))
             for w in range(writers)]
    t0 = time.monotonic()
    for p in procs:
        p.start()
    results = dict(queue.get(timeout=600) for _ in procs)
    for p in procs:
        p.join(timeout=60)
    seconds = time.monotonic() - t0 - 2.0
    conn = sqlite3.connect(db)
    try:
        got = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
               for t in ("runs", "trials", "steps", "llm_calls", "learnings", "learning_events")}
        (ok,) = conn.execute("PRAGMA integrity_check").fetchone()
        supports = [r[0] for r in conn.execute(
            "SELECT support FROM learnings WHERE variation = 'shared'")]
    finally:
        conn.close()
    n_trials = writers * runs * trials
    expected = {
        "runs": writers * runs,
        "trials": n_trials,
        "steps": n_trials * steps,
        "llm_calls": n_trials * steps,
        "learnings": (writers + 1) * LEARNINGS,
        "learning_events": 2 * n_trials * LEARNINGS,
    }
    return {
        "writers": writers,
        "writes": sum(r["writes"] for r in results.values()),
        "lock_errors": sum(r["lock_errors"] for r in results.values()),
        "other_errors": sum(r["other_errors"] for r in results.values()),
        "errors": [e for r in results.values() for e in r["errors"]][:5],
        "rows": got,
        "expected_rows": expected,
        "shared_support": supports,
        "integrity": ok,
        "exit_codes": [p.exitcode for p in procs],
        "seconds": round(seconds, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--writers", type=int, default=4)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--db", type=Path, default=None, help="default: a new temporary file")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    db = a.db or Path(tempfile.mkdtemp(prefix="concurrent_")) / "clin.db"
    fig = stress(db=db, writers=a.writers, runs=a.runs, trials=a.trials, steps=a.steps)
    ok = (fig["lock_errors"] == 0 and fig["other_errors"] == 0 and fig["integrity"] == "ok"
          and fig["rows"] == fig["expected_rows"])
    if a.json:
        print(json.dumps({**fig, "ok": ok}, sort_keys=True))
    else:
        print(f"{fig['writers']} writers, {fig['writes']} write transactions in "
              f"{fig['seconds']} s: {fig['lock_errors']} lock errors, {fig['other_errors']} "
              f"other errors, rows {'all present' if fig['rows'] == fig['expected_rows'] else fig['rows']}"
              f", integrity {fig['integrity']}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
