"""The memory generator: after a trial, the LLM reads the trace and the previous memory and
writes an updated list of causal abstractions, parsed strictly into the four forms."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from clin import prompts
from clin.memory import ParseReport, estimate_tokens, parse_learnings

from .controller import HistoryItem, clip
from .llm.base import ChatLLM, Completion, Message

MAX_LEARNINGS = 12
TRACE_TOKENS = 2500
_FORM = "(SHOULD BE NECESSARY|MAY BE NECESSARY|MAY NOT CONTRIBUTE|DOES NOT CONTRIBUTE)"


def reflection_schema() -> dict[str, Any]:
    """For schema-enforcing backends: every line is forced into one of the four forms."""
    line = {
        "type": "string",
        "pattern": f"^[a-z][a-z ]{{3,70}} {_FORM} to [a-z][a-z ]{{3,50}}$",
    }
    return {
        "type": "object",
        "properties": {
            "learnings": {"type": "array", "items": line, "minItems": 1,
                          "maxItems": MAX_LEARNINGS}
        },
        "required": ["learnings"],
    }


def trace_window(trace: Sequence[HistoryItem], budget_tokens: int = TRACE_TOKENS) -> tuple[
    list[HistoryItem], int
]:
    """The trace clipped to a token budget: observations shortened, oldest steps dropped
    first (the end of an attempt says most about why it failed). Returns (steps, omitted)."""
    items = [
        HistoryItem(idx=h.idx, action=h.action, observation=clip(h.observation, 160),
                    reward=h.reward)
        for h in trace
    ]
    kept: list[HistoryItem] = []
    used = 0
    for h in reversed(items):
        cost = estimate_tokens(h.action) + estimate_tokens(h.observation) + 6
        if used + cost > budget_tokens:
            break
        kept.append(h)
        used += cost
    kept.reverse()
    return kept, len(items) - len(kept)


def build_messages(
    *,
    task: str,
    previous: str,
    trace: Sequence[HistoryItem],
    trial: int,
    score: float,
    outcome: str,
    structured: bool,
) -> list[Message]:
    window, omitted = trace_window(trace)
    system = prompts.render(
        "reflection_system", max_learnings=MAX_LEARNINGS, structured=structured
    )
    user = prompts.render(
        "reflection_user",
        task=task,
        previous=previous,
        trace=window,
        steps=len(trace),
        omitted=omitted,
        trial=trial,
        score=score,
        outcome=outcome,
    )
    return [Message(role="system", content=system), Message(role="user", content=user)]


def parse_reflection(text: str) -> ParseReport:
    """Accept ``{"learnings": [...]}`` or plain lines; never raises."""
    body = text if isinstance(text, str) else ""
    start, end = body.find("{"), body.rfind("}")
    if start != -1 and end > start:
        try:
            data = json.loads(body[start : end + 1])
        except (ValueError, RecursionError):
            data = None
        if isinstance(data, dict) and isinstance(data.get("learnings"), list):
            body = "\n".join(str(x) for x in data["learnings"] if isinstance(x, (str, int)))
    return parse_learnings(body)


def reflect(
    llm: ChatLLM,
    *,
    task: str,
    previous: str,
    trace: Sequence[HistoryItem],
    trial: int,
    score: float,
    outcome: str,
) -> tuple[ParseReport, Completion, list[Message]]:
    structured = bool(getattr(llm, "enforces_schema", False))
    messages = build_messages(
        task=task, previous=previous, trace=trace, trial=trial, score=score,
        outcome=outcome, structured=structured,
    )
    completion = llm.complete(
        messages, json_schema=reflection_schema() if structured else None, max_tokens=400
    )
    return parse_reflection(completion.text), completion, messages
