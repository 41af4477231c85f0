"""``clin.memory`` stands alone: importing it (every module of it) loads none of the agent,
the environments, the trials, the CLI or an LLM backend, and not LangChain. It may load the
prompt files' loader (``clin.prompts``: Jinja2 only), the bottom layer every prompt is
rendered with.

Checked on ``sys.modules`` of a fresh interpreter started outside the repository, so that
only the installed package can be imported and nothing is preloaded by pytest."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import clin.memory

# The rest of CLIN (the bare package ``clin`` is allowed: its ``__init__`` only sets the
# version), the pre-namespace top-level names, and the third-party libraries behind the
# agent's LLM backends, environments and CLI.
FORBIDDEN = (
    "clin.agent", "clin.controller", "clin.executor", "clin.reflection", "clin.errors",
    "clin.llm", "clin.envs", "clin.trials", "clin.cli",
    "memory", "envs", "prompts", "trials", "cli",
    "openai", "httpx", "llama_cpp", "xllamacpp", "tenacity", "rapidfuzz", "scienceworld", "py4j",
    "typer", "rich", "langchain_core", "langchain",
)
LANGCHAIN = ("langchain_core", "langchain")
# The adapters, each the only module importing its framework: LangChain, LangGraph's store
# (which itself loads langchain-core), the MCP SDK (httpx, rich).
ADAPTERS = ("clin.memory.langchain", "clin.memory.langgraph", "clin.memory.mcp")


def offending(mods: list[str], forbidden: tuple[str, ...]) -> list[str]:
    return [m for m in mods if any(m == f or m.startswith(f + ".") for f in forbidden)]


def clin_outside_memory(mods: list[str]) -> list[str]:
    """Modules of clin loaded besides the memory and the prompt loader below it."""
    return [m for m in mods if m.startswith("clin.")
            and not m.startswith(("clin.memory", "clin.prompts"))]


def loaded_after(code: str, cwd: Path) -> list[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, cwd=cwd, timeout=120)
    return json.loads(out.stdout.strip().splitlines()[-1])


def memory_modules() -> list[str]:
    """Every module of the library as installed, whatever files it is split into."""
    return sorted(m.name for m in pkgutil.walk_packages(clin.memory.__path__, "clin.memory."))


def test_the_forbidden_list_is_seen_when_loaded(tmp_path: Path) -> None:
    """The probe can fail: importing the agent does load what the list forbids."""
    mods = loaded_after("import clin.agent, clin.llm.openai_backend, clin.envs.tiny", tmp_path)
    assert {"clin.agent", "clin.llm", "clin.envs.tiny", "rapidfuzz"} <= set(
        offending(mods, FORBIDDEN))


def test_import_memory_loads_no_clin_and_no_backend(tmp_path: Path) -> None:
    modules = [m for m in memory_modules() if m not in ADAPTERS]
    assert len(modules) >= 5  # the walk found the library's modules
    mods = loaded_after("import clin.memory\n" + "\n".join(f"import {m}" for m in modules),
                        tmp_path)
    assert set(modules) <= set(mods)
    assert offending(mods, FORBIDDEN) == []
    assert clin_outside_memory(mods) == []


def test_bare_import_memory_loads_only_what_the_facade_needs(tmp_path: Path) -> None:
    mods = loaded_after("from clin.memory import Memory, Scope, parse_learnings", tmp_path)
    assert offending(mods, FORBIDDEN) == []


def test_memory_langchain_loads_langchain_core_but_no_clin(tmp_path: Path) -> None:
    mods = loaded_after("import clin.memory.langchain", tmp_path)
    assert "langchain_core" in mods
    assert offending(mods, tuple(f for f in FORBIDDEN if f not in LANGCHAIN)) == []


@pytest.mark.parametrize("adapter", ["clin.memory.langgraph", "clin.memory.mcp"])
def test_memory_adapters_load_their_framework_but_no_clin(tmp_path: Path, adapter: str) -> None:
    pytest.importorskip(adapter.rsplit(".", 1)[1])
    mods = loaded_after(f"import {adapter}", tmp_path)
    assert adapter in mods
    assert offending(mods, ("memory", "envs", "prompts", "trials", "cli")) == []
    assert clin_outside_memory(mods) == []
