"""Helpers shared by the reliability tests (not a test module)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from clin.llm.base import Message
from tests.fake_openai import default_answer

REPO = Path(__file__).resolve().parents[1]


class BorrowedEnv:
    """Stands in for the ScienceWorld class inside ``clin.session`` so CLI tests reuse the
    session's JVM: ``ScienceWorld(simplification)`` returns this, ``with`` yields the shared
    env, and leaving the block does not close it."""

    def __init__(self, env: Any) -> None:
        self.env = env

    def __call__(self, simplification: str = "easy") -> BorrowedEnv:
        return self

    def __enter__(self) -> Any:
        return self.env

    def __exit__(self, *exc: object) -> None:
        pass


def borrow_sw(monkeypatch: pytest.MonkeyPatch, sw: Any) -> None:
    from clin import session

    monkeypatch.setattr(session, "ScienceWorld", BorrowedEnv(sw))


def scripted_answers(n: int = 500) -> list:
    """Answers for ScriptedLLM: valid proposals and reflections, chosen from the prompt."""
    counter = iter(range(10**9))

    def answer(messages: list[Message]) -> str:
        return default_answer([m.model_dump() for m in messages], next(counter))

    return [answer] * n


def rows(db: Path, sql: str, params: tuple = ()) -> list[tuple]:
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def check_trials_whole(db: Path) -> dict[str, int]:
    """Every completed trial has a score, a finish time and exactly its steps 1..n; no trial
    is completed twice for the same run and index. Returns counts for reports."""
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        (ok,) = conn.execute("PRAGMA integrity_check").fetchone()
        assert ok == "ok", ok
        (fk,) = conn.execute("SELECT count(*) FROM pragma_foreign_key_check").fetchone()
        assert fk == 0
        completed = conn.execute(
            "SELECT id, run_id, idx, score, finished_at, steps FROM trials "
            "WHERE status = 'completed'"
        ).fetchall()
        for tid, _run, _idx, score, finished, steps in completed:
            assert score is not None and finished is not None, (tid, score, finished)
            idxs = [r[0] for r in conn.execute(
                "SELECT idx FROM steps WHERE trial_id = ? ORDER BY idx", [tid])]
            assert idxs == list(range(1, steps + 1)), (tid, steps, idxs)
        dup = conn.execute(
            "SELECT run_id, idx, count(*) FROM trials WHERE status = 'completed' "
            "GROUP BY run_id, idx HAVING count(*) > 1"
        ).fetchall()
        assert not dup, dup
        bad = conn.execute(
            "SELECT count(*) FROM trials WHERE status != 'completed' AND completed = 1"
        ).fetchone()[0]
        assert bad == 0
        return {"completed_trials": len(completed)}
    finally:
        conn.close()


def stderr_lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.strip()]


def dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True)
