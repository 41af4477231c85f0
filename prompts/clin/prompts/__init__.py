"""Prompt templates as files (Jinja2), loaded by name: ``render("controller_system", ...)``.

Every prompt CLIN sends lives here, with this one loader: the controller's, the meta-memory's
and the reflection's (``clin.memory.reflect`` renders ``reflect_*``). This package is a
bottom layer: it imports nothing of ``clin`` (``clin.memory`` may import it, and ``clin.memory``
still imports no agent, environment or trials code). Editing a prompt never means editing
agent logic. Undefined placeholders are errors, so a renamed variable cannot silently vanish
from a prompt.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

DIR = Path(__file__).parent


def number(value: float | None) -> str:
    """A score or mean as prompts show it (the ``fmt`` filter): ``50``, ``12.5``, ``unknown``."""
    if value is None:
        return "unknown"
    return f"{value:g}"


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(DIR)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        autoescape=False,
    )
    env.filters["fmt"] = number
    return env


def names() -> list[str]:
    return sorted(p.stem for p in DIR.glob("*.j2"))


def render(name: str, **values: Any) -> str:
    """Render ``prompts/<name>.j2`` with ``values``."""
    return _env().get_template(f"{name}.j2").render(**values).strip()
