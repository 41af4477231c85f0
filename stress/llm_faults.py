"""LLM faults at 20% over longer runs: every run must finish with all its trials, every
attempt (failed ones too) must be counted in ``llm_calls.attempts``, nothing stored lost.

Two parts: (a) in-process, ``FaultyLLM`` around a scripted model on the real ScienceWorld,
``--runs`` runs with different seeds; (b) the real ``clin run`` CLI in a subprocess against
the local fake OpenAI server (429/500/dropped connections/garbage/empty/malformed/no action).

    .venv/bin/python stress/llm_faults.py --json
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from stress.checks import check_db, check_finished_runs
from tests.fake_openai import ALL_FAULTS, FakeOpenAI, default_answer

CLI = [sys.executable, "-c", "import sys; from clin.cli import main; sys.exit(main())"]


def _attempts(db: Path) -> tuple[int, int, int]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(
            "SELECT ifnull(sum(attempts), 0), count(*), ifnull(max(attempts), 0) FROM llm_calls"
        ).fetchone()
    finally:
        conn.close()


def in_process(runs: int, trials: int, max_steps: int, task: str, workdir: Path) -> dict:
    from clin.agent import AgentSettings
    from clin.envs.scienceworld import ScienceWorld
    from clin.llm import Message, ScriptedLLM
    from clin.llm.faults import FaultyLLM
    from clin.memory import Memory
    from clin.trials.runner import AdaptConfig, run_adapt

    counter = iter(range(10**9))

    def answer(messages: list[Message]) -> str:
        return default_answer([m.model_dump() for m in messages], next(counter))

    injected: Counter[str] = Counter()
    fig = {"runs": 0, "runs_finished": 0, "trials_completed": 0, "tries": 0, "calls": 0,
           "attempts_stored": 0, "max_attempts": 0}
    with ScienceWorld("easy") as env:
        for seed in range(runs):
            db = workdir / f"inproc{seed}.db"
            llm = FaultyLLM(ScriptedLLM([answer] * 10_000), rate=0.2, seed=seed,
                            sleep=lambda _s: None)
            cfg = AdaptConfig(task=task, trials=trials, settings=AgentSettings(max_steps=max_steps))
            with Memory(db) as mem:
                run_adapt(cfg, env=env, llm=llm, mem=mem)
            fig["runs"] += 1
            fig["runs_finished"] += check_finished_runs(db, trials)
            fig["trials_completed"] += check_db(db)["completed_trials"]
            stored, calls, most = _attempts(db)
            if stored != llm.tries or calls != llm.calls:
                raise SystemExit(f"seed {seed}: {llm.tries} tries / {llm.calls} calls, "
                                 f"stored {stored} / {calls}")
            fig["tries"] += llm.tries
            fig["calls"] += llm.calls
            fig["attempts_stored"] += stored
            fig["max_attempts"] = max(fig["max_attempts"], most)
            injected.update(llm.injected)
    fig["injected"] = dict(injected)
    fig["faults_injected"] = sum(injected.values())
    return fig


def through_cli(trials: int, max_steps: int, task: str, workdir: Path, seed: int) -> dict:
    db = workdir / "cli.db"
    faults = tuple(f for f in ALL_FAULTS if f != "timeout")  # the CLI's client waits 60 s
    with FakeOpenAI(fault_rate=0.2, seed=seed, faults=faults) as srv:
        proc = subprocess.run(
            [*CLI, "run", "--task", task, "--trials", str(trials), "--max-steps",
             str(max_steps), "--model", "openai:fake", "--base-url", srv.url, "--db", str(db)],
            check=False, capture_output=True, text=True, cwd=ROOT, timeout=1800,
            env={**os.environ, "OPENAI_API_KEY": "sk-stress-not-a-key", "NO_COLOR": "1"},
        )
        stats = srv.stats()
    if proc.returncode != 0:
        raise SystemExit(f"clin run exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    stored, calls, most = _attempts(db)
    if stored != stats["requests"]:
        raise SystemExit(f"{stats['requests']} HTTP requests but {stored} attempts stored")
    return {"runs_finished": check_finished_runs(db, trials),
            "trials_completed": check_db(db)["completed_trials"], "requests": stats["requests"],
            "attempts_stored": stored, "calls": calls, "max_attempts": most,
            "injected": stats["injected"], "faults_injected": stats["faults_injected"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="in-process runs (one seed each)")
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--max-steps", type=int, default=20)
    ap.add_argument("--task", default="find-living-thing")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="llm_faults_"))
    t0 = time.monotonic()
    fig = {"in_process": in_process(a.runs, a.trials, a.max_steps, a.task, workdir),
           "cli": through_cli(a.trials, a.max_steps, a.task, workdir, a.seed),
           "seconds": round(time.monotonic() - t0, 1), "workdir": str(workdir)}
    if a.json:
        print(json.dumps(fig, sort_keys=True))
    else:
        for part in ("in_process", "cli"):
            f = fig[part]
            print(f"{part}: {f['faults_injected']} faults injected {f['injected']}, "
                  f"{f['runs_finished']} runs finished, {f['trials_completed']} trials "
                  f"completed, {f['attempts_stored']} attempts stored, max {f['max_attempts']} "
                  "per call")


if __name__ == "__main__":
    main()
