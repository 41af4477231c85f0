"""The executor: ground a proposed action in the environment's valid actions.

Order: exact match, normalized match (case, punctuation, articles, synonyms), then fuzzy
ranking with rapidfuzz. A weak best match raises GroundingError carrying the closest
candidates, which the agent shows the LLM in a re-ask. ``focus on`` is never produced from
a proposal that did not ask to focus, and a focus proposal is only grounded on a near-exact
match: a wrong focus ends the task.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

from pydantic import BaseModel
from rapidfuzz import fuzz, process

from .errors import GroundingError

# Commands ScienceWorld accepts that are not always listed among the valid combinations.
ALWAYS_VALID = ("look around", "inventory", "wait", "wait1", "task")
FUZZY_ACCEPT = 88.0
FOCUS_ACCEPT = 96.0
CANDIDATES = 8

_ARTICLES = re.compile(r"\b(the|a|an|some)\b")
_NONWORD = re.compile(r"[^a-z0-9 ]+")
_SYNONYMS = [
    (re.compile(r"^(go|walk|head) (to )?(the )?"), "go to "),
    (re.compile(r"^take "), "pick up "),
    (re.compile(r"^grab "), "pick up "),
    (re.compile(r"^(turn on|switch on) "), "activate "),
    (re.compile(r"^(turn off|switch off) "), "deactivate "),
    (re.compile(r"^look$"), "look around"),
    (re.compile(r"^(examine|inspect) "), "look at "),
    (re.compile(r"^put (.+) (in|into|on) "), r"move \1 to "),
    (re.compile(r"^pour (.+) in "), r"pour \1 into "),
]
_PAIRS = [("open", "close"), ("close", "open"), ("activate", "deactivate"),
          ("deactivate", "activate")]


class Grounded(BaseModel):
    action: str
    method: str  # exact | normalized | fuzzy
    score: float = 100.0


@lru_cache(maxsize=65536)
def normalize_action(text: str) -> str:
    """Cached: the same valid actions come back step after step, up to thousands a room."""
    t = _NONWORD.sub(" ", text.lower())
    t = " ".join(t.split())
    for pattern, repl in _SYNONYMS:
        t = pattern.sub(repl, t)
    t = _ARTICLES.sub(" ", t)
    return " ".join(t.split())


def is_focus(text: str) -> bool:
    return text.strip().lower().startswith("focus")


def ground(proposal: str, valid_actions: Sequence[str]) -> Grounded:
    """Match ``proposal`` to one of ``valid_actions``; raise GroundingError if too weak."""
    valid = list(dict.fromkeys([*valid_actions, *ALWAYS_VALID]))
    if proposal in valid:
        return Grounded(action=proposal, method="exact")
    norm = normalize_action(proposal)
    wants_focus = is_focus(proposal)
    pool = [a for a in valid if is_focus(a) == wants_focus]
    by_norm: dict[str, str] = {}
    for a in pool:
        by_norm.setdefault(normalize_action(a), a)
    # "go to kitchen" and "teleport to kitchen" are both ways to move; prefer what exists.
    for variant in (norm, norm.replace("go to ", "teleport to "), norm.replace("teleport to ", "go to ")):
        if variant in by_norm:
            return Grounded(action=by_norm[variant], method="normalized")
    # "open X" when only "close X" is listed means X is already open: the simulator answers
    # that itself, which is more informative than swapping in an unrelated action.
    for verb, other in _PAIRS:
        if norm.startswith(verb + " "):
            twin = other + norm[len(verb):]
            if twin in by_norm:
                return Grounded(action=verb + by_norm[twin][len(other):], method="normalized")
    if not pool:
        raise GroundingError(f"no valid action starts like {proposal!r}", [])
    ranked = process.extract(
        norm, list(by_norm), scorer=fuzz.token_sort_ratio, limit=CANDIDATES
    )
    candidates = [by_norm[c] for c, _, _ in ranked]
    best, best_score = ranked[0][0], float(ranked[0][1])
    threshold = FOCUS_ACCEPT if wants_focus else FUZZY_ACCEPT
    if best_score >= threshold:
        return Grounded(action=by_norm[best], method="fuzzy", score=best_score)
    reason = "a wrong focus ends the task" if wants_focus else "no close valid action"
    raise GroundingError(reason, candidates)


def best_choice(proposal: str, choices: Sequence[str]) -> int:
    """Index of the numbered option of an ambiguous request closest to the proposal."""
    if not choices:
        raise ValueError("no choices")
    scored = process.extractOne(normalize_action(proposal), [normalize_action(c) for c in choices],
                                scorer=fuzz.token_set_ratio)
    return int(scored[2]) if scored else 0
