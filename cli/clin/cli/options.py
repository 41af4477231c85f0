"""Options several commands take, declared once so that their flag, environment variable and
help read the same in each."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

MODEL_SPECS = "local | local:PATH.gguf | openai:MODEL"  # what `--model` takes (clin.llm.spec)
DbOpt = Annotated[
    Path,
    typer.Option("--db", envvar="CLIN_DB", help="SQLite file (default ./clin.db, or $CLIN_DB)."),
]
BaseUrlOpt = Annotated[
    str | None,
    typer.Option(envvar="OPENAI_BASE_URL", help="OpenAI-compatible endpoint URL."),
]
