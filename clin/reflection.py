"""The agent's adapter to the reflection core (``clin.memory.reflect``): the same input,
prompt and parser as the library API, sent through the agent's ``ChatLLM`` with the answer's
JSON schema when the backend enforces it."""

from __future__ import annotations

from clin.memory import ParseReport
from clin.memory.reflect import (
    ANSWER_TOKENS,
    MAX_LEARNINGS,
    ReflectionInput,
    build_messages,
    parse_answer,
    reflection_schema,
)

from .llm.base import ChatLLM, Completion, Message

__all__ = ["MAX_LEARNINGS", "parse_reflection", "reflect", "reflection_schema"]
parse_reflection = parse_answer  # one parser for every answer that holds learnings


def reflect(llm: ChatLLM, inp: ReflectionInput) -> tuple[ParseReport, Completion, list[Message]]:
    """Ask ``llm`` for the learnings of one trial. Returns (parsed learnings, the completion,
    the messages sent). An answer with no accepted learning leaves the memory unchanged when
    merged (``Memory.finish_trial`` counts its rejected lines)."""
    structured = bool(getattr(llm, "enforces_schema", False))
    messages = [Message.model_validate(m) for m in build_messages(inp, structured=structured)]
    completion = llm.complete(
        messages, json_schema=reflection_schema() if structured else None,
        max_tokens=ANSWER_TOKENS,
    )
    return parse_answer(completion.text), completion, messages
