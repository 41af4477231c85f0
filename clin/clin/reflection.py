"""The agent's adapter to the reflection core (``clin.memory.reflect``): the same input,
prompt and parser as the library API, sent through the agent's ``ChatLLM`` with the answer's
JSON schema when the backend enforces it."""

from __future__ import annotations

from clin.memory import ParseReport, parse_learnings
from clin.memory.reflect import (
    ANSWER_TOKENS,
    MAX_LEARNINGS,
    ReflectionInput,
    build_messages,
    reflection_schema,
)

from .llm.base import ChatLLM, Completion, Message, purpose

__all__ = ["MAX_LEARNINGS", "reflect", "reflection_schema"]


def reflect(llm: ChatLLM, inp: ReflectionInput) -> tuple[ParseReport, Completion, list[Message]]:
    """Ask ``llm`` for the learnings of one trial. Returns (parsed learnings, the completion,
    the messages sent). An answer with no accepted learning leaves the memory unchanged when
    merged (``Memory.finish_trial`` counts its rejected lines)."""
    structured = bool(getattr(llm, "enforces_schema", False))
    messages = [Message.model_validate(m) for m in build_messages(inp, structured=structured)]
    with purpose("reflection"):
        completion = llm.complete(
            messages, json_schema=reflection_schema() if structured else None,
            max_tokens=ANSWER_TOKENS,
        )
    return parse_learnings(completion.text), completion, messages


class PromptLLM:
    """A ``ChatLLM`` as the library's ``str -> str`` reflection LLM (``Memory.reflect``), for
    ``clin mcp --model``: the prompt goes as one user message, with the answer's JSON schema
    when the backend enforces it."""

    def __init__(self, llm: ChatLLM) -> None:
        self.llm = llm
        self.model_name = llm.name

    def __call__(self, prompt: str) -> str:
        structured = bool(getattr(self.llm, "enforces_schema", False))
        with purpose("reflection"):
            return self.llm.complete(
                [Message(role="user", content=prompt)],
                json_schema=reflection_schema() if structured else None,
                max_tokens=ANSWER_TOKENS,
            ).text
