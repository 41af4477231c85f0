"""``memory`` stands alone: importing it pulls in nothing from CLIN, and not LangChain."""

from __future__ import annotations

import json
import subprocess
import sys

FORBIDDEN = ("clin", "envs", "trials", "prompts", "langchain_core", "langchain")


def loaded_after(code: str) -> list[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_memory_loads_no_clin_and_no_langchain() -> None:
    mods = loaded_after(
        "import memory, memory.jsonl, memory.record, memory.reflect, memory.add, memory.ranking"
    )
    assert "memory.store" in mods
    assert [m for m in mods if m.split(".")[0] in FORBIDDEN] == []


def test_memory_langchain_loads_langchain_core_but_no_clin() -> None:
    mods = loaded_after("import memory.langchain")
    assert "langchain_core" in mods
    assert [m for m in mods if m.split(".")[0] in ("clin", "envs", "trials", "prompts")] == []


def test_no_module_of_memory_imports_the_rest_of_clin_even_lazily() -> None:
    import re
    from pathlib import Path

    import memory

    pattern = re.compile(r"^\s*(?:from|import)\s+(clin|envs|trials|prompts)\b", re.MULTILINE)
    offenders = {p.name: pattern.findall(p.read_text())
                 for p in Path(memory.__file__).parent.glob("*.py")}
    assert {k: v for k, v in offenders.items() if v} == {}
