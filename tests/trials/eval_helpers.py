"""Scripted answers for eval tests: one callable that answers as controller, reflection or
meta-memory writer by the purpose each call declares, so tests can count calls exactly."""

from __future__ import annotations

import json
import os
import signal
import time

from clin.llm import ScriptedLLM
from clin.llm.base import Message, current_purpose

REFLECTION_LINE = "looking around SHOULD BE NECESSARY to finding the living thing"
META_LINE = "teleporting to the outside MAY BE NECESSARY to finding any living thing"


def answer(messages: list[Message]) -> str:
    why = current_purpose()
    if why == "meta":
        return f"{META_LINE}\nthis line is chatter and gets rejected"
    if why == "reflection":
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


def dies_once(marker: str, after: int) -> ScriptedLLM:
    """For Ray actors: answers like :func:`roomy_llm`, but the first process to reach answer
    ``after`` while ``marker`` does not exist creates it and kills itself (SIGKILL), as a
    crashed machine would; the episode must then be re-run elsewhere."""

    def die(messages: list[Message]) -> str:
        if not os.path.exists(marker):
            open(marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)
        return answer(messages)

    return ScriptedLLM([*([answer] * (after - 1)), die, *([answer] * 200)])


def hangs_once(marker: str, after: int) -> ScriptedLLM:
    """Like :func:`dies_once`, but the process hangs (sleeps for an hour) instead."""

    def hang(messages: list[Message]) -> str:
        if not os.path.exists(marker):
            open(marker, "w").close()
            time.sleep(3600)
        return answer(messages)

    return ScriptedLLM([*([answer] * (after - 1)), hang, *([answer] * 200)])
