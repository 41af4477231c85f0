"""Shared fixtures. No test reaches a real model unless it asks for allow_model_requests.
Agent-loop tests play the pure-Python TinyWorld (``tiny``); the tests where the simulator
matters use the real ScienceWorld (``sw``), shared per session (one JVM)."""

from __future__ import annotations

import faulthandler
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from clin.envs.tiny import TinyWorld
from clin.llm import guard
from clin.memory import Memory
from tests.support import tiers


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--fast", action="store_true",
                     help="the fast tier: no JVM, model, Ray or browser (tests/support/tiers.py)")


def pytest_configure(config: pytest.Config) -> None:
    if not config.getoption("--fast"):
        return
    if not config.option.markexpr:
        config.option.markexpr = tiers.FAST_MARKEXPR
    stubs = Path(tempfile.mkdtemp(prefix="clin-fast-tier-refuses-heavy-tests-"))
    config.add_cleanup(lambda: shutil.rmtree(stubs, ignore_errors=True))
    tiers.install_guard(stubs)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that takes the real simulator, a browser or a Ray cluster (directly or through
    another fixture) gets that marker, marked by hand or not, so the fast tier leaves it out."""
    for item in items:
        names = getattr(item, "fixturenames", ())
        for fixture, marker in tiers.FIXTURE_MARKERS.items():
            if fixture in names:
                item.add_marker(marker)


HARD_EXIT_AFTER_S = 60  # beyond a test's own timeout


_STDERR: dict[int, object] = {}


def _uncaptured_stderr(config: pytest.Config) -> object:
    """The terminal's stderr, which pytest saved before capturing the tests' output: the
    process ends right after the dump, so it must not go to a capture buffer."""
    capturing = getattr(config.pluginmanager.getplugin("capturemanager"),
                        "_global_capturing", None)
    fd = getattr(getattr(capturing, "err", None), "targetfd_save", 2)
    if fd not in _STDERR:
        _STDERR[fd] = os.fdopen(fd, "w", closefd=False)
    return _STDERR[fd]


@pytest.fixture(autouse=True)
def _hard_timeout(request: pytest.FixtureRequest) -> Iterator[None]:
    """pytest-timeout (``timeout`` in pyproject.toml, or ``@pytest.mark.timeout(N)``) fails a
    test that hangs in Python code, with every thread's stack. A hang inside C code that
    holds the GIL (closing llama.cpp's server once did, issue 22) stops that too, so a
    watchdog thread of C code (faulthandler) dumps the stacks and ends the run a minute
    later: the suite fails in minutes and says where, instead of using up CI's time."""
    marker = request.node.get_closest_marker("timeout")
    limit = float(marker.args[0]) if marker and marker.args else float(
        request.config.getini("timeout") or 0)
    if limit <= 0:
        yield
        return
    faulthandler.dump_traceback_later(limit + HARD_EXIT_AFTER_S, exit=True,
                                      file=_uncaptured_stderr(request.config))
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


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
