"""Prompt templates as files (Jinja2), loaded by name: ``render("controller_system", ...)``.

Editing a prompt never means editing agent logic. Undefined placeholders are errors, so a
renamed variable cannot silently vanish from a prompt.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

DIR = Path(__file__).parent


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(DIR)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        autoescape=False,
    )


def names() -> list[str]:
    return sorted(p.stem for p in DIR.glob("*.j2"))


def render(name: str, **values: Any) -> str:
    """Render ``prompts/<name>.j2`` with ``values``."""
    return _env().get_template(f"{name}.j2").render(**values).strip()
