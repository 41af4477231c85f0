"""The controller: build the per-step prompt and parse the LLM's proposal.

Prompt layout is cache-friendly: everything stable (instructions, task, memory) comes first,
then an append-only history whose window moves in jumps of ``HISTORY_CHUNK`` steps, then the
current state. Between two steps the prompt usually differs only in its tail, which is what
llama.cpp (and OpenAI's prompt caching) reuse.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, Field

from clin import prompts

from .llm.base import Message

TASK_COMPLETE = "TASK_COMPLETE"
HISTORY_CHUNK = 8
OBS_CHARS = 240
ACTION_TEMPLATES = [
    "open OBJ", "close OBJ", "activate OBJ", "deactivate OBJ", "connect OBJ to OBJ",
    "disconnect OBJ", "use OBJ [on OBJ]", "look around", "look at OBJ", "look in OBJ",
    "read OBJ", "move OBJ to OBJ", "pick up OBJ", "put down OBJ", "pour OBJ into OBJ",
    "dunk OBJ into OBJ", "mix OBJ", "teleport to LOC", "go to LOC", "eat OBJ", "flush OBJ",
    "focus on OBJ", "wait", "wait1", "inventory",
]


class Proposal(BaseModel):
    """What the controller LLM decided for one step."""

    action: str
    rationale: str = ""
    used_learnings: list[int] = Field(default_factory=list)


class HistoryItem(BaseModel):
    idx: int
    action: str
    observation: str
    reward: float = 0.0


class ProposalParseError(ValueError):
    """The LLM output held no action; the message is fed back to the LLM."""


def history_window(history: Sequence[HistoryItem]) -> Sequence[HistoryItem]:
    """The last 8..15 steps: the start moves every ``HISTORY_CHUNK`` steps, not every step,
    so consecutive prompts share their history prefix."""
    n = len(history)
    start = max(0, (n // HISTORY_CHUNK - 1) * HISTORY_CHUNK)
    return history[start:]


def clip(text: str, limit: int = OBS_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def build_messages(
    *,
    task: str,
    memory_text: str,
    history: Sequence[HistoryItem],
    step: int,
    score: float,
    observation: str,
    look: str,
    inventory: str,
) -> list[Message]:
    system = prompts.render(
        "controller_system", templates=ACTION_TEMPLATES, task=task, memory=memory_text
    )
    user = prompts.render(
        "controller_user",
        history=[
            HistoryItem(idx=h.idx, action=h.action, observation=clip(h.observation))
            for h in history_window(history)
        ],
        step=step,
        score=int(score) if float(score).is_integer() else score,
        observation=clip(observation, 600),
        look=clip(look, 1200),
        inventory=clip(inventory, 300),
    )
    return [Message(role="system", content=system), Message(role="user", content=user)]


def proposal_schema(valid_actions: Sequence[str] | None = None) -> dict[str, Any]:
    """JSON schema of a proposal; with ``valid_actions`` the action is an enum (for backends
    that enforce schemas, the action is then always groundable)."""
    action: dict[str, Any] = {"type": "string", "maxLength": 120}
    if valid_actions is not None:
        action = {"type": "string", "enum": [*valid_actions, TASK_COMPLETE]}
    return {
        "type": "object",
        "properties": {
            "used_learnings": {"type": "array", "items": {"type": "integer"}, "maxItems": 5},
            "rationale": {"type": "string", "maxLength": 100},
            "action": action,
        },
        "required": ["used_learnings", "rationale", "action"],
    }


_JSON_OBJECT = re.compile(r"\{.*\}", re.DOTALL)
_IDS = re.compile(r"\d+")
_BARE_ACTION = re.compile(r"^(?:(?:next )?action\s*:\s*)?[A-Za-z][A-Za-z0-9 _'-]*$", re.IGNORECASE)


def parse_proposal(text: str) -> Proposal:
    """Parse JSON, or the reference text format ``I used learning id(s): ... $$$ why ### act``,
    or, failing both, a bare last line. Raises ProposalParseError when no action is found."""
    if not isinstance(text, str) or not text.strip():
        raise ProposalParseError("the answer was empty")
    m = _JSON_OBJECT.search(text)
    if m:
        try:
            data = json.loads(m.group(0))
        except (ValueError, RecursionError):
            data = None
        if isinstance(data, dict) and isinstance(data.get("action"), str):
            action = _clean_action(data["action"])
            if action:
                return Proposal(
                    action=action,
                    rationale=str(data.get("rationale") or "")[:500],
                    used_learnings=_ids(data.get("used_learnings")),
                )
    if "###" in text:
        head, _, tail = text.rpartition("###")
        action = _clean_action(tail.strip().splitlines()[0] if tail.strip() else "")
        if action:
            ids_part, _, rationale = head.partition("$$$")
            return Proposal(
                action=action,
                rationale=rationale.strip()[:500],
                used_learnings=_ids(ids_part.split(":", 1)[-1] if "learning" in ids_part else ""),
            )
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    last = lines[-1] if lines else ""
    if m is None and len(last) <= 80 and _BARE_ACTION.match(last):
        action = _clean_action(re.sub(r"^(action|next action)\s*:\s*", "", last, flags=re.IGNORECASE))
        if action:
            return Proposal(action=action)
    raise ProposalParseError(
        'no action found: answer as JSON {"used_learnings": [], "rationale": "...", '
        '"action": "..."}'
    )


def _clean_action(action: str) -> str:
    action = action.strip().strip("`\"'").strip()
    action = re.sub(r"^>\s*", "", action)
    action = action.rstrip(".").strip()
    if action.upper().replace(" ", "_") == TASK_COMPLETE:
        return TASK_COMPLETE
    return action[:200]


def _ids(value: Any) -> list[int]:
    if isinstance(value, list):
        out = []
        for v in value:
            if isinstance(v, bool):
                continue
            if isinstance(v, int):
                out.append(v)
            elif isinstance(v, str) and v.strip().isdigit():
                out.append(int(v.strip()))
        return out[:20]
    if isinstance(value, str):
        return [int(x) for x in _IDS.findall(value)[:20] if len(x) < 7]
    return []
