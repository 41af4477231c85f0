"""``--model SPEC`` -> a ChatLLM. Specs: ``local``, ``local:PATH.gguf``, ``openai:MODEL``."""

from __future__ import annotations

import os
from typing import Any

from ..errors import ModelSpecError
from .base import ChatLLM
from .cpu import threads_from_env

SPEC_HELP = "use `local`, `local:/path/to/model.gguf` or `openai:<model>` (e.g. openai:gpt-4o-mini)"


def default_spec() -> str:
    """``openai:gpt-4o-mini`` when a key is set, else the offline ``local`` model."""
    return "openai:gpt-4o-mini" if os.environ.get("OPENAI_API_KEY") else "local"


def parse_spec(spec: str) -> tuple[str, str | None]:
    kind, _, arg = (spec or "").strip().partition(":")
    if kind == "local":
        threads_from_env()  # a bad CLIN_LOCAL_THREADS stops here, before a JVM or model loads
        return kind, arg or None
    if kind == "openai":
        if not arg:
            raise ModelSpecError(f"--model openai needs a model name: {SPEC_HELP}")
        return kind, arg
    if kind == "langchain":
        raise ModelSpecError(
            "langchain chat models are passed from Python (clin.llm.LangChainChat(model)); "
            f"on the command line {SPEC_HELP}"
        )
    raise ModelSpecError(f"unknown model spec {spec!r}: {SPEC_HELP}")


def build_llm(spec: str, *, base_url: str | None = None, **options: Any) -> ChatLLM:
    """Build the backend a spec names; raises ModelSpecError / LLMUnavailable for the user."""
    kind, arg = parse_spec(spec)
    if kind == "local":
        from .local import LocalLlama

        return LocalLlama(arg, **options)
    from .openai_backend import OpenAIChat

    assert arg is not None  # parse_spec refuses "openai" without a model name
    return OpenAIChat(arg, base_url=base_url, **options)
