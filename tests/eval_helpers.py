"""Scripted answers for eval tests: one callable that answers as controller, reflection or
meta-memory writer depending on the prompt, so tests can count calls exactly."""

from __future__ import annotations

import json

from clin.llm import ScriptedLLM
from clin.llm.base import Message

REFLECTION_LINE = "looking around SHOULD BE NECESSARY to finding the living thing"
META_LINE = "teleporting to the outside MAY BE NECESSARY to finding any living thing"


def answer(messages: list[Message]) -> str:
    system = messages[0].content
    if "META-MEMORY" in system:
        return f"{META_LINE}\nthis line is chatter and gets rejected"
    if "review an agent's attempt" in system:
        return REFLECTION_LINE
    return json.dumps({"used_learnings": [1], "rationale": "see", "action": "look around"})


def scripted(calls: int) -> ScriptedLLM:
    return ScriptedLLM([answer] * calls)


def roomy_llm() -> ScriptedLLM:
    """For worker processes (must be importable): more answers than any tiny eval needs."""
    return scripted(200)


def interrupt_after(calls: int) -> ScriptedLLM:
    """Answers ``calls`` times, then raises KeyboardInterrupt as Ctrl-C would."""

    def boom(_: list[Message]) -> str:
        raise KeyboardInterrupt

    return ScriptedLLM([*([answer] * calls), boom])
