"""A scripted LLM for tests: answers from a list, records every call, and fails loudly when
asked more than its script holds (unlike a cycling fake, which hides extra calls)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..errors import UnexpectedModelCall
from .base import Completion, Message

Answer = str | Callable[[list[Message]], str]


class ScriptedLLM:
    enforces_schema = False

    def __init__(self, script: Sequence[Answer], name: str = "scripted") -> None:
        self.script = list(script)
        self.name = name
        self.calls: list[list[Message]] = []
        self.schemas: list[dict[str, Any] | None] = []

    def complete(
        self,
        messages: list[Message],
        *,
        json_schema: dict[str, Any] | None = None,
        max_tokens: int = 256,
    ) -> Completion:
        if len(self.calls) >= len(self.script):
            raise UnexpectedModelCall(
                f"scripted LLM asked for answer {len(self.calls) + 1} but holds "
                f"{len(self.script)}; last prompt ends: {messages[-1].content[-300:]!r}"
            )
        answer = self.script[len(self.calls)]
        self.calls.append(list(messages))
        self.schemas.append(json_schema)
        text = answer(messages) if callable(answer) else answer
        prompt_chars = sum(len(m.content) for m in messages)
        return Completion(
            text=text,
            model=self.name,
            prompt_tokens=prompt_chars // 4,
            completion_tokens=len(text) // 4,
            latency_ms=0.0,
        )

    def assert_complete(self) -> None:
        left = len(self.script) - len(self.calls)
        if left:
            raise AssertionError(f"scripted LLM still holds {left} unused answers")
