"""Shared fixtures. No test reaches a real model unless it asks for allow_model_requests.
Agent-loop tests play the pure-Python TinyWorld (``tiny``); the tests where the simulator
matters use the real ScienceWorld (``sw``), shared per session (one JVM)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from clin.envs.tiny import TinyWorld
from clin.memory import Memory

from clin.llm import guard


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that takes the real simulator is a ScienceWorld test, marked or not, so
    ``-m "not scienceworld"`` runs without Java."""
    for item in items:
        if "sw" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.scienceworld)
        if "twx" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.textworld)


@pytest.fixture(autouse=True)
def _no_model_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(guard, "ALLOW_MODEL_REQUESTS", False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("CLIN_DB", raising=False)
    monkeypatch.delenv("CLIN_LOCAL_THREADS", raising=False)


@pytest.fixture
def allow_model_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(guard, "ALLOW_MODEL_REQUESTS", True)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "clin.db"


@pytest.fixture
def mem(db_path: Path) -> Iterator[Memory]:
    with Memory(db_path) as m:
        yield m


@pytest.fixture
def tiny() -> Iterator[TinyWorld]:
    """A fresh TinyWorld: no Java, instant, deterministic."""
    with TinyWorld() as env:
        yield env


@pytest.fixture(scope="session")
def sw() -> Iterator[object]:
    """One real ScienceWorld JVM for the whole session."""
    if shutil.which("java") is None:
        pytest.fail("Java is required for the ScienceWorld tests (.ci/run installs it)")
    from clin.envs.scienceworld import ScienceWorld

    env = ScienceWorld("easy")
    yield env
    env.close()


@pytest.fixture(scope="session")
def twx() -> Iterator[object]:
    """One real TextWorldExpress JVM for the whole session (its steps take milliseconds)."""
    if shutil.which("java") is None:
        pytest.fail("Java is required for the TextWorldExpress tests (.ci/run installs it)")
    from clin.envs.twx import TextWorldExpress

    env = TextWorldExpress()
    yield env
    env.close()


def proposal(action: str, used: list[int] | None = None, why: str = "") -> str:
    """A controller answer in the JSON format."""
    return json.dumps({"used_learnings": used or [], "rationale": why, "action": action})
