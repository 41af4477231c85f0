"""Environments by name: the registry (names, aliases, options), the optional capabilities as
Protocols, and a third-party environment found through the ``clin.envs`` entry-point group
and played by ``clin run --env``."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

from clin.cli import main
from clin.envs import (
    ChecksTasks,
    EnvError,
    HasGoldPaths,
    HasSplits,
    NumberedChoices,
    TextEnv,
    UnknownEnv,
    make,
    names,
    registry,
)
from clin.envs.tiny import TinyObservation, TinyWorld
from clin.memory import Memory
from tests.support.fake_openai import FakeOpenAI

ENVS_DOC = Path(__file__).resolve().parents[2] / "docs" / "environments.md"


def readme_env() -> str:
    """The complete third-party environment of docs/environments.md, "Your own environment"."""
    text = ENVS_DOC.read_text().split("## Your own environment", 1)[1]
    return text.split("```python\n", 1)[1].split("```", 1)[0]


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """An installed distribution whose ``clin.envs`` entry point is ``lamp-room``."""
    (tmp_path / "lamp_room.py").write_text(readme_env())
    info = tmp_path / "lamp_room-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: lamp-room\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[clin.envs]\nlamp-room = lamp_room:LampRoom\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    monkeypatch.setattr(registry, "_loaded_plugins", False)
    monkeypatch.setattr(registry, "_SPECS", dict(registry._SPECS))
    yield "lamp-room"
    sys.modules.pop("lamp_room", None)


def test_built_in_names_aliases_and_options() -> None:
    assert {"scienceworld", "textworld-express", "tiny"} <= set(names())
    assert registry.canonical("twx") == "textworld-express"
    env = make("tiny", teleport=True)
    assert isinstance(env, TinyWorld) and env.teleport
    with pytest.raises(UnknownEnv, match=r"unknown environment 'tinyy'\. Did you mean: tiny\?"):
        make("tinyy")
    with pytest.raises(EnvError, match="environment tiny takes no option 'colour'"):
        make("tiny", colour="red")
    assert registry.parse_options(["numLocations=5", "teleport=true", "name=x"]) == {
        "numLocations": 5, "teleport": True, "name": "x"}
    with pytest.raises(EnvError, match="KEY=VALUE"):
        registry.parse_options(["numLocations"])


def test_capabilities_are_protocols_not_probes(tiny) -> None:
    assert isinstance(tiny, TextEnv) and isinstance(tiny, HasSplits)
    assert isinstance(tiny, ChecksTasks) and not isinstance(tiny, HasGoldPaths)
    assert isinstance(TinyObservation(text=""), NumberedChoices)


def test_a_registered_callable_and_a_non_env_is_refused() -> None:
    registry.register("not-an-env", lambda: object())
    try:
        with pytest.raises(EnvError, match="does not implement clin.envs.TextEnv"):
            make("not-an-env")
    finally:
        registry._SPECS.pop("not-an-env")


def test_third_party_env_by_entry_point_runs_through_clin_run(
    plugin: str, tmp_path: Path, capsys, allow_model_requests, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert plugin in names()
    assert make(plugin).name == "lamp-room"
    with pytest.raises(EnvError, match="environment lamp-room takes no option 'lamps'"):
        make(plugin, lamps=2)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    db = tmp_path / "clin.db"
    assert main(["tasks", "--env", plugin]) == 0
    assert "light" in capsys.readouterr().out
    with FakeOpenAI() as srv:
        code = main(["run", "--env", plugin, "--task", "light", "--trials", "1",
                     "--max-steps", "2", "--model", "openai:fake", "--base-url", srv.url,
                     "--db", str(db)])
    assert code == 0, capsys.readouterr().err
    capsys.readouterr()
    with Memory(db) as mem:
        assert {r["env"] for r in mem.db.query("SELECT env FROM runs")} == {"lamp-room"}
        prompt = next(iter(mem.db.query(
            "SELECT prompt FROM llm_calls WHERE purpose = 'controller'")))["prompt"]
    assert "You are an agent in a dark room with a lamp." in prompt
    assert "turn on OBJ" in prompt and "ScienceWorld" not in prompt
    assert main(["run", "--env", plugin, "--task", "dark", "--db", str(db)]) == 2
    assert capsys.readouterr().err.strip() == "error: unknown task 'dark' in lamp-room."
