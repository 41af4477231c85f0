"""``memory`` stands alone: importing it pulls in nothing from CLIN, and not LangChain."""

from __future__ import annotations

import json
import subprocess
import sys

# Everything of CLIN but the memory library itself (and the bare package ``clin``, whose
# ``__init__`` only sets the version).
FORBIDDEN = ("clin.agent", "clin.llm", "clin.envs", "clin.trials", "clin.prompts", "clin.cli",
             "clin.controller", "clin.executor", "clin.reflection", "langchain_core",
             "langchain")


def offending(mods: list[str], forbidden: tuple[str, ...]) -> list[str]:
    return [m for m in mods if any(m == f or m.startswith(f + ".") for f in forbidden)]


def loaded_after(code: str) -> list[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_memory_loads_no_clin_and_no_langchain() -> None:
    mods = loaded_after(
        "import clin.memory, clin.memory.jsonl, clin.memory.record, clin.memory.reflect, "
        "clin.memory.add, clin.memory.ranking"
    )
    assert "clin.memory.store" in mods
    assert offending(mods, FORBIDDEN) == []
    assert [m for m in mods if m.startswith("clin.")
            and not m.startswith("clin.memory")] == []


def test_memory_langchain_loads_langchain_core_but_no_clin() -> None:
    mods = loaded_after("import clin.memory.langchain")
    assert "langchain_core" in mods
    assert offending(mods, FORBIDDEN[:-2]) == []


def test_no_module_of_memory_imports_the_rest_of_clin_even_lazily() -> None:
    import re
    from pathlib import Path

    from clin import memory

    pattern = re.compile(
        r"^\s*(?:from|import)\s+(\.\.[\w.]*|clin(?!\.memory\b)[\w.]*|envs|trials|prompts)\b",
        re.MULTILINE,
    )
    offenders = {p.name: pattern.findall(p.read_text())
                 for p in Path(memory.__file__).parent.glob("*.py")}
    assert {k: v for k, v in offenders.items() if v} == {}
