"""Helpers shared by the reliability tests (not a test module)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from clin.llm.base import Message, current_purpose
from stress.checks import check_db
from tests.support.fake_openai import default_answer

REPO = Path(__file__).resolve().parents[2]


class BorrowedEnv:
    """``env`` (TinyWorld, or the session's one JVM) as ``clin.trials.session`` gets it from
    ``make``: every attribute is the env's, but closing it does nothing."""

    def __init__(self, env: Any) -> None:
        self._env = env

    def __getattr__(self, name: str) -> Any:
        return getattr(self._env, name)

    def close(self) -> None:
        pass


def borrow_env(monkeypatch: pytest.MonkeyPatch, env: Any) -> None:
    """Make ``clin run`` (in this process) play ``env`` whatever ``--env`` names."""
    from clin.trials import session

    monkeypatch.setattr(session, "make", lambda name, **options: BorrowedEnv(env))


def scripted_answers(n: int = 500) -> list:
    """Answers for ScriptedLLM: valid proposals and reflections, by the call's purpose."""
    counter = iter(range(10**9))

    def answer(messages: list[Message]) -> str:
        return default_answer(current_purpose(), next(counter))

    return [answer] * n


def rows(db: Path, sql: str, params: tuple = ()) -> list[tuple]:
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def check_trials_whole(db: Path) -> dict[str, int]:
    """See :func:`stress.checks.check_db` (raises InvariantError, an AssertionError)."""
    return check_db(db)


def stderr_lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.strip()]


def dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True)


def one_finished_trial(mem, scope, learning: str = "opening the door MAY BE NECESSARY to "
                       "going outside") -> int:
    """A finished run of one completed trial (25/100, step limit) whose reflection wrote
    ``learning``; returns the run id."""
    from clin.memory import parse_learnings

    run_id = mem.start_run(protocol="adapt", scope=scope, trials_requested=1)
    trial_id = mem.start_trial(run_id, 1, scope)
    mem.finish_trial(trial_id, score=25.0, completed=False, stop_reason="step-limit",
                     reflection=parse_learnings(learning), scope=scope)
    mem.finish_run(run_id)
    return run_id
