"""Any langchain-core ``BaseChatModel`` (passed in from Python)."""

from __future__ import annotations

import time
from typing import Any

from ..errors import TransientLLMError
from .base import Completion, JsonSchema, Message
from .retry import call_with_retries


class LangChainChat:
    enforces_schema = False

    def __init__(self, model: Any, *, attempts: int = 3, name: str | None = None) -> None:
        from langchain_core.language_models import BaseChatModel

        if not isinstance(model, BaseChatModel):
            raise TypeError("LangChainChat needs a langchain_core BaseChatModel")
        self.model = model
        self.attempts = attempts
        self.name = name or f"langchain:{getattr(model, '_llm_type', type(model).__name__)}"

    def complete(self, messages: list[Message], *, json_schema: JsonSchema | None = None,
                 max_tokens: int = 256) -> Completion:
        from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

        kinds = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}
        lc = [kinds[m.role](content=m.content) for m in messages]
        t0 = time.perf_counter()

        def call() -> Any:
            try:
                return self.model.invoke(lc)
            except (TimeoutError, ConnectionError) as exc:
                raise TransientLLMError(str(exc)) from exc

        msg, tries = call_with_retries(call, attempts=self.attempts)
        usage = getattr(msg, "usage_metadata", None) or {}
        content = msg.content if isinstance(msg.content, str) else str(msg.content)
        return Completion(
            text=content,
            model=self.name,
            prompt_tokens=usage.get("input_tokens"),
            completion_tokens=usage.get("output_tokens"),
            latency_ms=(time.perf_counter() - t0) * 1000,
            attempts=tries,
        )
