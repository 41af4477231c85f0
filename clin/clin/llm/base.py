"""The one chat interface the agent talks to; backends are thin adapters around it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel


class Message(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: str


class Completion(BaseModel):
    """One answer plus what it cost."""

    text: str
    model: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_ms: float = 0.0
    attempts: int = 1  # 1 + transient failures retried


JsonSchema = dict[str, Any]
"""A JSON Schema, as ``model_json_schema()`` writes it: what ``json_schema=`` asks an answer
to match."""


Purpose = Literal["controller", "choice", "reflection", "meta"]
"""What a call is for: the agent's proposal (and its re-asks), the agent's pick among
numbered options, a trial's reflection, a meta-memory. The ``purpose`` column of
``llm_calls`` says the same in finer words (``reask`` for a re-asked proposal)."""

_PURPOSE: ContextVar[Purpose | None] = ContextVar("clin_llm_purpose", default=None)


@contextmanager
def purpose(name: Purpose) -> Iterator[None]:
    """Declare what the ``complete`` calls made inside are for. Backends ignore it; the
    scripted test LLM answers by it, so a test never tells calls apart by prompt text."""
    token = _PURPOSE.set(name)
    try:
        yield
    finally:
        _PURPOSE.reset(token)


def current_purpose() -> Purpose | None:
    """The purpose declared by the innermost :func:`purpose` around this call, if any."""
    return _PURPOSE.get()


@runtime_checkable
class ChatLLM(Protocol):
    """A chat model. ``json_schema`` asks for output matching the schema; backends that can
    enforce it (llama.cpp grammars, OpenAI structured outputs) do, others ignore it and the
    caller's parser copes with free text."""

    name: str
    enforces_schema: bool  # True when json_schema (incl. enums) is guaranteed by the backend

    def complete(self, messages: list[Message], *, json_schema: JsonSchema | None = None,
                 max_tokens: int = 256) -> Completion: ...


@runtime_checkable
class Closeable(Protocol):
    """A backend holding resources to release (the offline model's server and its memory)."""

    def close(self) -> None: ...
