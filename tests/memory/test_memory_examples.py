"""The examples run as written: the README example, and an agent that improves."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

from clin.memory import Memory, Scope

ROOT = Path(__file__).resolve().parents[2]


def run(script: str, *args: str, cwd: Path) -> str:
    out = subprocess.run([sys.executable, str(ROOT / "examples" / script), *args], cwd=cwd,
                         capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_escape_room_agent_improves_across_attempts(tmp_path: Path) -> None:
    db = tmp_path / "escape.db"
    stdout = run("escape_room.py", "--attempts", "4", "--db", str(db), cwd=tmp_path)
    scores = [int(s) for s in re.findall(r"attempt \d+: score +(\d+)", stdout)]
    assert len(scores) == 4
    assert scores[0] < scores[1] < scores[2] == 100 and scores[-1] == 100
    with Memory(db) as mem:
        rows = list(mem.db.query("SELECT trial, score FROM v_trial_scores"))
        assert [r["score"] for r in rows] == [float(s) for s in scores]


def test_readme_example_runs_as_written(tmp_path: Path) -> None:
    stdout = run("readme_example.py", cwd=tmp_path)
    assert stdout.splitlines()[0] == (
        "added=3 kept=0 promoted=0 demoted=0 retired=0 rejected=0")
    assert "[1] pouring water over the tea bag SHOULD BE NECESSARY to making tea" in stdout
    assert (tmp_path / "agent.db").exists()
    doc = (ROOT / "README.md").read_text()
    example = (ROOT / "examples" / "readme_example.py").read_text()
    body = example.split('"""', 2)[2].strip()
    assert body in doc  # the documented example is the one this test runs


def test_datasette_canned_queries_run_on_a_real_file(tmp_path: Path) -> None:
    scope = Scope(task="escape")
    with Memory(tmp_path / "clin.db") as mem:
        both = ("opening the door MAY BE NECESSARY to escaping\n"
                "kicking the door MAY BE NECESSARY to escaping")
        for answer in (both, "opening the door MAY BE NECESSARY to escaping"):  # kick: retired
            mem.record_trial(scope, [("open door", "The door opens.")], 60)
            mem.reflect(scope, llm=lambda prompt, a=answer: a)
    meta = json.loads((ROOT / "memory" / "clin" / "memory" / "datasette-metadata.json").read_text())
    queries = meta["databases"]["clin"]["queries"]
    assert {"current_learnings", "learning_history", "trial_scores"} <= set(queries)
    conn = sqlite3.connect(f"file:{tmp_path / 'clin.db'}?mode=ro", uri=True)
    params = {"task": "", "words": "door", "learning_id": 1, "run_id": ""}
    for name, q in queries.items():
        rows = conn.execute(q["sql"], params).fetchall()
        assert rows, name
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert set(meta["databases"]["clin"]["tables"]) <= tables
