"""Helpers shared by the reliability tests (not a test module)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from clin.llm.base import Message
from stress.checks import check_db
from tests.fake_openai import default_answer

REPO = Path(__file__).resolve().parents[1]


class BorrowedEnv:
    """Stands in for the ScienceWorld class inside ``clin.trials.session`` so CLI tests play a
    given env (TinyWorld, or the session's one JVM): ``ScienceWorld(simplification)`` returns
    this, ``with`` yields the env, and leaving the block does not close it."""

    def __init__(self, env: Any) -> None:
        self.env = env

    def __call__(self, simplification: str = "easy") -> BorrowedEnv:
        return self

    def __enter__(self) -> Any:
        return self.env

    def __exit__(self, *exc: object) -> None:
        pass


def borrow_env(monkeypatch: pytest.MonkeyPatch, env: Any) -> None:
    """Make ``clin run`` (in this process) play ``env`` instead of starting ScienceWorld."""
    from clin.trials import session

    monkeypatch.setattr(session, "ScienceWorld", BorrowedEnv(env))


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
    """See :func:`stress.checks.check_db` (raises InvariantError, an AssertionError)."""
    return check_db(db)


def stderr_lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.strip()]


def dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True)
