"""``python -m bench view``: page load times of ``clin view`` on a generated database of
1,000 trials x 100 steps (an ADAPT eval of 200 episodes x 5 trials, one controller call per
step with a prompt of about 2 KB, reflections writing learnings that later steps cite).

The database is written directly with SQL (after :class:`Memory` created the schema): the
benchmark measures the viewer, not the agent. Each page is fetched over HTTP from a real
``clin view`` process, once to warm up and then ``REPEATS`` times.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from clin.trials.schema import open_memory

from .stats import BenchTable, median, verdict

EPISODES, TRIALS, STEPS = 200, 5, 100
REPEATS = 5
TARGET_S = 1.0
TASKS = ("grow-plant", "boil", "freeze", "find-living-thing", "use-thermometer",
         "chemistry-mix", "melt", "find-plant", "lifespan-longest-lived", "grow-fruit")
PROMPT = ("You are an agent in ScienceWorld. Memory:\n" + "\n".join(
    f"[{i}] doing thing {i} SHOULD BE NECESSARY to finishing the task" for i in range(12))
    + "\nRecent steps:\n" + "\n".join(f"> go to room {i}\nYou move to room {i}. It has a table,"
                                       " a sink and a door." for i in range(14)))
OBS = ("This room is called the kitchen. In it, you see: a counter, a sink, a fridge, a stove, "
       "a table with a glass cup, a seed jar. You also see: a door to the hallway (open).")


def generate(path: Path, episodes: int = EPISODES, trials: int = TRIALS, steps: int = STEPS,
             seed: int = 7) -> dict[str, int]:
    """Write the database; returns ids worth timing (a trial, a learning cited often, ...)."""
    rnd = random.Random(seed)
    with open_memory(path):  # the memory's schema and the eval tables
        pass
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("BEGIN")
    ts = "2026-11-28T00:00:00.000+00:00"
    conn.execute("INSERT INTO evals (id, protocol, status, namespace, model, config, started_at)"
                 " VALUES (1, 'adapt', 'finished', 'bench', 'scripted', '{}', ?)", [ts])
    trial_id = step_rows = call_id = learning_id = 0
    cite_count: dict[int, int] = {}
    for ep in range(1, episodes + 1):
        task, var = TASKS[ep % len(TASKS)], str(ep // len(TASKS))
        ns = f"bench/{task}/{var}"
        conn.execute(
            "INSERT INTO runs (id, started_at, finished_at, status, protocol, model, namespace,"
            " agent, env, task, variation, trials_requested, config) VALUES "
            "(?, ?, ?, 'finished', 'adapt', 'scripted', ?, 'clin', 'scienceworld', ?, ?, ?, '{}')",
            [ep, ts, ts, ns, task, var, trials])
        conn.execute(
            "INSERT INTO eval_episodes (eval_id, key, phase, task, variation, trials, namespace,"
            " run_id, status, started_at) VALUES (1, ?, 'adapt', ?, ?, ?, ?, ?, 'finished', ?)",
            [f"adapt/{task}/{var}", task, int(var), trials, ns, ep, ts])
        scope_learnings: list[int] = []
        for idx in range(1, trials + 1):
            trial_id += 1
            score, rows, calls = 0.0, [], []
            for s in range(1, steps + 1):
                if rnd.random() < 0.04:
                    score = min(100.0, score + rnd.choice((2, 5, 8, 10)))
                cited = rnd.sample(scope_learnings, min(len(scope_learnings), rnd.randint(0, 3)))
                for lid in cited:
                    cite_count[lid] = cite_count.get(lid, 0) + 1
                grounding = rnd.choices(("exact", "normalized", "fuzzy", "reask"),
                                        (80, 12, 5, 3))[0]
                action = f"go to room {rnd.randint(1, 9)}"
                rows.append((trial_id, s, action + (" now" if grounding != "exact" else ""),
                             action, grounding, "because the memory says so",
                             json.dumps(cited), OBS, 0.0, score, 0, 900.0, 50.0, 1.0, ts))
                purposes = ["controller"] + (["reask"] if grounding == "reask" else [])
                for purpose in purposes:
                    call_id += 1
                    calls.append((call_id, ep, trial_id, s, purpose, "scripted", 700, 40, 900.0,
                                  1, PROMPT, json.dumps({"action": action}), ts))
            call_id += 1
            calls.append((call_id, ep, trial_id, None, "reflection", "scripted", 1500, 120,
                          2000.0, 1, PROMPT, "x SHOULD BE NECESSARY to y", ts))
            conn.execute(
                "INSERT INTO trials (id, run_id, idx, namespace, agent, env, task, variation, "
                "status, score, steps, completed, stop_reason, learnings_written, "
                "learnings_rejected, started_at, finished_at) VALUES (?, ?, ?, ?, 'clin', "
                "'scienceworld', ?, ?, 'completed', ?, ?, ?, 'step-limit', 3, 0, ?, ?)",
                [trial_id, ep, idx, ns, task, var, score, steps, int(score >= 100), ts, ts])
            conn.executemany("INSERT INTO steps (trial_id, idx, proposal, action, grounding, "
                             "rationale, cited_learning_ids, observation, reward, score, done, "
                             "llm_ms, env_ms, overhead_ms, created_at) VALUES "
                             "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
            conn.executemany("INSERT INTO llm_calls (id, run_id, trial_id, step_idx, purpose, "
                             "model, prompt_tokens, completion_tokens, latency_ms, attempts, "
                             "prompt, response, created_at) VALUES "
                             "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", calls)
            step_rows += len(rows)
            for lid in scope_learnings:  # the reflection keeps what it had
                conn.execute("INSERT INTO learning_events (learning_id, trial_id, event, "
                             "confidence, text, score, created_at) VALUES "
                             "(?, ?, 'kept', 'may', 'kept', ?, ?)", [lid, trial_id, score, ts])
            for _ in range(3):  # and adds three
                learning_id += 1
                text = f"doing thing {learning_id} MAY BE NECESSARY to {task}"
                conn.execute(
                    "INSERT INTO learnings (id, namespace, agent, env, task, variation, cause, "
                    "effect, relation, confidence, text, key, status, support, score_sum, "
                    "first_trial_id, last_trial_id, first_seen, last_seen) VALUES (?, ?, 'clin',"
                    " 'scienceworld', ?, ?, ?, ?, 'necessary', 'may', ?, ?, 'active', 1, ?, ?, ?,"
                    " ?, ?)",
                    [learning_id, ns, task, var, f"doing thing {learning_id}", task, text,
                     f"k{learning_id}", score, trial_id, trial_id, ts, ts])
                conn.execute("INSERT INTO learning_events (learning_id, trial_id, event, "
                             "confidence, text, score, created_at) VALUES "
                             "(?, ?, 'added', 'may', ?, ?, ?)", [learning_id, trial_id, text,
                                                                  score, ts])
                scope_learnings.append(learning_id)
    # A meta-memory built from the first episode's best trial, as GEN-ENV / GEN-TASK store.
    learning_id += 1
    conn.execute(
        "INSERT INTO learnings (id, namespace, agent, env, cause, effect, relation, confidence, "
        "text, key, status, support, score_sum, first_seen, last_seen) VALUES (?, 'bench/meta',"
        " 'clin', 'scienceworld', 'looking around', 'any task', 'necessary', 'may', "
        "'looking around MAY BE NECESSARY to any task', 'meta', 'active', 1, 0, ?, ?)",
        [learning_id, ts, ts])
    conn.execute("INSERT INTO meta_memories (id, eval_id, key, namespace, agent, env, status, "
                 "learnings_written, learnings_rejected, created_at) VALUES (1, 1, "
                 "'gen-env/any', 'bench/meta', 'clin', 'scienceworld', 'done', 1, 0, ?)", [ts])
    conn.execute("INSERT INTO meta_learnings (meta_id, learning_id) VALUES (1, ?)", [learning_id])
    conn.execute("INSERT INTO meta_sources (meta_id, source_episode_id, source_run_id, "
                 "source_trial_id, source_task, source_variation, source_score) VALUES "
                 "(1, 1, 1, 1, ?, 0, 0)", [TASKS[1]])
    conn.execute("COMMIT")
    conn.close()
    top = max(cite_count, key=lambda k: cite_count[k]) if cite_count else 0
    return {"trials": trial_id, "steps": step_rows, "calls": call_id,
            "learnings": learning_id, "cited_learning": top, "cites": cite_count.get(top, 0),
            "meta_learning": learning_id}


def _get(base: str, path: str) -> tuple[int, float, int]:
    u = urlsplit(base)
    t0 = time.perf_counter()
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
    finally:
        conn.close()
    return resp.status, time.perf_counter() - t0, len(body)


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux ``/proc``; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _start(db: Path) -> tuple[subprocess.Popen, str]:
    clin = Path(sys.executable).with_name("clin")
    proc = subprocess.Popen([str(clin), "view", "--db", str(db)], stdout=subprocess.PIPE,
                            text=True)
    line: list[str] = []
    t = threading.Thread(target=lambda: line.append(proc.stdout.readline()), daemon=True)
    t.start()
    t.join(60)
    if not line or " at http://" not in line[0]:
        proc.kill()
        raise RuntimeError(f"clin view did not start: {line!r}")
    return proc, line[0].split(" at ")[1].split()[0].rstrip("/")


def view_table(workdir: Path | None = None) -> BenchTable:
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        db = Path(tmp) / "bench-view.db"
        t0 = time.perf_counter()
        ids = generate(db)
        gen_s = time.perf_counter() - t0
        size_mib = db.stat().st_size / 2**20
        mid = ids["trials"] // 2
        pages = {
            "runs and evals (`/`)": "/",
            "runs of one task (`/?task=boil`)": "/?task=boil",
            "eval, 200 episodes (`/eval/1`)": "/eval/1",
            "run, 5 trials (`/run/100`)": "/run/100",
            "trial, 100 steps (`/trial/N`)": f"/trial/{mid}",
            "step with its prompt (`/trial/N/step/50`)": f"/trial/{mid}/step/50",
            "trial vs trial, 100 + 100 steps": f"/compare/{mid - 1}/{mid}",
            f"learning cited by {ids['cites']} steps": f"/learning/{ids['cited_learning']}",
            "LLM call (`/llm/N`)": "/llm/5000",
            "SQL behind a trial page": f"/sql/trial/{mid}",
            "Datasette: `steps` table (100,000 rows)": "/clin/steps",
            "Datasette: canned query `trial_scores`, one run": "/clin/trial_scores?run_id=100",
            "Datasette: `trial_scores`, all 1,000 trials": "/clin/trial_scores?run_id=",
        }
        proc, base = _start(db)
        rows, worst = [], 0.0
        try:
            for name, path in pages.items():
                status, _, size = _get(base, path)  # warm-up (and page cache)
                if status != 200:
                    raise RuntimeError(f"{path} answered {status}")
                cpu0 = _cpu_s(proc.pid)
                times = [_get(base, path)[1] for _ in range(REPEATS)]
                cpu = (_cpu_s(proc.pid) - cpu0) / REPEATS
                worst = max(worst, max(times))
                rows.append([name, f"{median(times) * 1000:.0f}", f"{max(times) * 1000:.0f}",
                             f"{cpu * 1000:.0f}", f"{size / 1024:.0f}"])
        finally:
            proc.terminate()
            proc.wait(30)
        from clin.viewer import export_static

        t0 = time.perf_counter()
        files = export_static(db, Path(tmp) / "site", run_id=100)
        export_s = time.perf_counter() - t0
    notes = [
        (f"Database: {ids['trials']:,} trials, {ids['steps']:,} steps, {ids['calls']:,} LLM "
         f"calls (prompts ~{len(PROMPT) / 1024:.1f} KiB each), {ids['learnings']:,} learnings; "
         f"{size_mib:.0f} MiB, generated in {gen_s:.0f} s."),
        (f"Each page: one warm-up GET, then {REPEATS} timed GETs over HTTP from a `clin view` "
         "process (wall clock, client side: request to last byte). Server CPU ms: the `clin "
         "view` process's CPU time per request (from /proc), which a loaded machine does not "
         "inflate the way it inflates wall clock."),
        (f"No page over {TARGET_S:g} s: {verdict(worst <= TARGET_S)} (slowest single load "
         f"{worst * 1000:.0f} ms)."),
        (f"`clin report --html --run-id 100` (static export of one run, 5 trials): "
         f"{len(files)} files in {export_s:.2f} s."),
        ("`trial_scores` with no run lists all 1,000 trials: most of its time is Datasette "
         "rendering 1,000 rows (808 KiB); its token sums read the index "
         "`idx_llm_calls_trial_tokens` (migration m005: without it they read every "
         "`llm_calls` row, prompt text included, 0.45 s of SQL instead of 0.07 s)."),
    ]
    return BenchTable(key="view", title="5. Viewer page loads (`clin view`, 1,000 trials x "
                      "100 steps)", columns=["page", "median ms", "max ms", "server CPU ms", "KiB"], rows=rows,
                      notes=notes)
