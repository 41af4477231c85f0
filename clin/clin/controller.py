"""The controller: build the per-step prompt and parse the LLM's proposal.

Prompt layout is cache-friendly: everything stable (instructions, task, memory) comes first,
then an append-only history whose window moves in jumps of ``HISTORY_CHUNK`` steps, then the
current state. Between two steps the prompt usually differs only in its tail, which is what
llama.cpp (and OpenAI's prompt caching) reuse. The history shows the agent's own rationale
for each step in the window; each observation is clipped to a token budget, and the window
starts later (by whole chunks) when the history would pass ``HISTORY_TOKENS``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from clin import prompts
from clin.envs.base import DEFAULT_PROFILE, EnvProfile
from clin.memory import Learning, RenderedMemory, Scope, estimate_tokens, render
from clin.memory.learnings import ORIGINS, Origin, origin
from clin.memory.reflect import for_backends
from clin.memory.render import clip, clip_tokens

from .llm.base import Message

TASK_COMPLETE = "TASK_COMPLETE"
HISTORY_CHUNK = 8
HISTORY_TOKENS = 1500  # the whole history window
OBS_TOKENS = 100  # one observation in the history (about 400 characters)
RATIONALE_TOKENS = 50  # one earlier rationale in the history
ANSWER_TOKENS = 256  # room for a plan-length rationale, the cited ids and the action
ACTION_CHARS, RATIONALE_CHARS, MAX_CITED = 200, 400, 8


class Proposal(BaseModel):
    """What the controller LLM decided for one step. Field order is answer order: the cited
    learnings, then the plan, then the action the plan leads to. Its JSON schema (see
    ``proposal_schema``) is generated from this model."""

    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True,
                              json_schema_extra=for_backends)

    used_learnings: list[int] = Field(default_factory=list, max_length=MAX_CITED)
    rationale: str = Field(default="", max_length=RATIONALE_CHARS)
    action: str = Field(min_length=1, max_length=ACTION_CHARS)


class HistoryItem(BaseModel):
    idx: int
    action: str
    observation: str
    reward: float = 0.0
    rationale: str = ""  # why the agent chose the action, as it said then


class ProposalParseError(ValueError):
    """The LLM output held no action; the message is fed back to the LLM."""


def _shown(h: HistoryItem) -> HistoryItem:
    return HistoryItem(idx=h.idx, action=h.action, observation=clip_tokens(h.observation, OBS_TOKENS),
                       reward=h.reward, rationale=clip_tokens(h.rationale, RATIONALE_TOKENS))


def history_window(history: Sequence[HistoryItem], budget: int = HISTORY_TOKENS
                   ) -> list[HistoryItem]:
    """The last 8..15 steps as shown: the start moves every ``HISTORY_CHUNK`` steps, not every
    step, so consecutive prompts share their history prefix; a window over ``budget`` tokens
    starts a chunk later (the newest step is always shown)."""
    n = len(history)
    start = max(0, (n // HISTORY_CHUNK - 1) * HISTORY_CHUNK)
    shown = [_shown(h) for h in history[start:]]
    costs = [estimate_tokens(h.action) + estimate_tokens(h.observation)
             + estimate_tokens(h.rationale) + 6 for h in shown]
    cut = 0
    while cut < len(shown) - 1 and sum(costs[cut:]) > budget:
        cut = min(cut + HISTORY_CHUNK, len(shown) - 1)
    return shown[cut:]


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
    profile: EnvProfile = DEFAULT_PROFILE,
) -> list[Message]:
    """The step's prompt; ``profile`` brings the world's name, action templates and hints."""
    system = prompts.render(
        "controller_system", world=profile.world, templates=profile.action_templates,
        hints=profile.hints, task=task, memory=memory_text, rationale_chars=RATIONALE_CHARS,
    )
    user = prompts.render(
        "controller_user",
        history=history_window(history),
        step=step,
        score=int(score) if float(score).is_integer() else score,
        observation=clip(observation, 600),
        look=clip(look, 1200),
        inventory=clip(inventory, 300),
    )
    return [Message(role="system", content=system), Message(role="user", content=user)]


def proposal_schema(valid_actions: Sequence[str] | None = None) -> dict[str, Any]:
    """JSON schema of a proposal, generated from ``Proposal``; with ``valid_actions`` the
    action is an enum (for backends that enforce schemas, the action is then always
    groundable). Every field is required and no other is allowed, as OpenAI's strict
    structured output and llama.cpp's grammar both take it."""
    schema = Proposal.model_json_schema(mode="serialization")
    if valid_actions is not None:
        schema["properties"]["action"] = {
            "title": "Action", "type": "string", "enum": [*valid_actions, TASK_COMPLETE]}
    return schema


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
                    rationale=str(data.get("rationale") or "")[:RATIONALE_CHARS],
                    used_learnings=_ids(data.get("used_learnings")),
                )
    if "###" in text:
        head, _, tail = text.rpartition("###")
        action = _clean_action(tail.strip().splitlines()[0] if tail.strip() else "")
        if action:
            ids_part, _, rationale = head.partition("$$$")
            return Proposal(
                action=action,
                rationale=rationale.strip()[:RATIONALE_CHARS],
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
    return action[:ACTION_CHARS]


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
        return out[:MAX_CITED]
    if isinstance(value, str):
        return [int(x) for x in _IDS.findall(value)[:MAX_CITED] if len(x) < 7]
    return []


def render_memory(learnings: Sequence[Learning], scope: Scope,
                  budget_tokens: int | None) -> RenderedMemory:
    """The learnings block of the prompt: ``learnings`` (in recall order within each section)
    numbered across all sections so any can be cited, the scope's own first, then the
    inherited ones under their own headings (``prompts/memory_block.j2``); within
    ``budget_tokens`` for the numbered lines."""
    groups: dict[Origin, list[Learning]] = {o: [] for o in ORIGINS}
    for learning in learnings:
        groups[origin(learning, scope)].append(learning)
    ordered = [lr for o in ORIGINS for lr in groups[o]]
    numbered = render(ordered, budget_tokens)
    lines = numbered.text.splitlines() if numbered.text else []
    sections: list[tuple[Origin, list[str]]] = []
    start = 0
    for o in ORIGINS:
        part = lines[start:start + len(groups[o])]
        start += len(part)
        if part:
            sections.append((o, part))
    if not sections:
        return numbered
    return RenderedMemory(text=prompts.render("memory_block", sections=sections),
                          ids=numbered.ids)
