"""The one chat interface the agent talks to; backends are thin adapters around it."""

from __future__ import annotations

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


@runtime_checkable
class ChatLLM(Protocol):
    """A chat model. ``json_schema`` asks for output matching the schema; backends that can
    enforce it (llama.cpp grammars, OpenAI structured outputs) do, others ignore it and the
    caller's parser copes with free text."""

    name: str
    enforces_schema: bool  # True when json_schema (incl. enums) is guaranteed by the backend

    def complete(
        self,
        messages: list[Message],
        *,
        json_schema: dict[str, Any] | None = None,
        max_tokens: int = 256,
    ) -> Completion: ...


@runtime_checkable
class Closeable(Protocol):
    """A backend holding resources to release (the offline model's server and its memory)."""

    def close(self) -> None: ...
