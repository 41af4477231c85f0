"""The executor: decide what to send for a proposed action, without losing a good plan.

The agent (``clin.agent``) tries, in order:

1. ``match_valid``: the proposal is one of the environment's valid actions, verbatim
   (``exact``) or after normalization (case, punctuation, articles, synonyms: ``normalized``).
2. The environment's own parser: the proposal is sent unchanged (``parser``). ScienceWorld
   accepts forms its valid-action list spells differently ("focus on thermometer in
   inventory", "pick up metal pot" for a pot listed as "metal pot containing water"); a
   command it cannot parse answers "No known action matches that input." without ticking the
   world (``Observation.understood`` is False), so trying costs one simulator call and nothing
   else. The parser is the authority on which object a name means: no Python copy of it can
   drift from it.
3. ``ground``: a close valid action with the same verb (``fuzzy``); never for ``focus on``,
   whose object is never changed (a wrong focus ends the task).
4. Only when nothing can be sent: a re-ask whose candidates share the proposal's verb and
   objects (``candidates``).

An ambiguous command ("Ambiguous request", numbered options) is answered by
``choose_option``: the option that names the same objects as the proposal; when none clearly
does, the agent asks the model with the options (``asked``), never guesses.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

from pydantic import BaseModel
from rapidfuzz import fuzz, process

from clin.memory import GroundingKind

from .errors import GroundingError

__all__ = [
    "ALWAYS_VALID", "Grounded", "GroundingKind", "candidates", "choose_option", "ground",
    "is_focus", "match_valid", "normalize_action", "verb_of",
]

# Commands ScienceWorld accepts that are not always listed among the valid combinations.
ALWAYS_VALID = ("look around", "inventory", "wait", "wait1", "task")
FUZZY_ACCEPT = 88.0
CANDIDATES = 8
CHOICE_ACCEPT = 0.5  # share of the proposal's object words an option must name

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
# Verb phrases of ScienceWorld's templates (after normalization), longest first.
_VERBS = sorted(
    ["pick up", "put down", "look at", "look in", "look around", "focus on", "teleport to",
     "go to", "open", "close", "activate", "deactivate", "connect", "disconnect", "use", "read",
     "move", "pour", "dunk", "mix", "eat", "flush", "wait1", "wait", "inventory", "task"],
    key=len, reverse=True,
)
# Words that join object names ("apple seed in seed jar to flower pot 3"), not objects.
_JOINERS = frozenset({"in", "on", "to", "into", "containing", "and", "with", "from", "of",
                      "called", "substance", "stage", "the", "a", "an", "some"})


class Grounded(BaseModel):
    action: str
    method: GroundingKind
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


@lru_cache(maxsize=65536)
def verb_of(text: str) -> str:
    """The template verb of an action ("pick up", "move", "focus on"), or its first word."""
    norm = normalize_action(text)
    for verb in _VERBS:
        if norm == verb or norm.startswith(verb + " "):
            return verb
    return norm.split(" ", 1)[0] if norm else ""


@lru_cache(maxsize=65536)
def object_words(text: str) -> frozenset[str]:
    """The words that name objects (and their containers) in an action or an option."""
    norm = normalize_action(text)
    verb = verb_of(text)
    rest = norm[len(verb):].split()
    return frozenset(w for w in rest if w not in _JOINERS)


_MOVES = ("go to", "teleport to")


def _same_verb(proposal: str, valid: Sequence[str]) -> list[str]:
    """The valid actions that start with the proposal's verb (or its twin: open/close,
    go to/teleport to). A C-level prefix test: a kitchen lists ~1,500 actions and only
    these few need normalizing. Every valid action if none starts so (odd casing)."""
    verb = verb_of(proposal)
    verbs = {verb, *(other for v, other in _PAIRS if v == verb)}
    if verb in _MOVES:
        verbs.update(_MOVES)
    prefixes = tuple(v + " " for v in verbs if v)
    pool = [a for a in valid if a.startswith(prefixes)]
    return pool or list(valid)


def _by_norm(valid: Sequence[str], focus: bool) -> dict[str, str]:
    out: dict[str, str] = {}
    for a in valid:
        if is_focus(a) == focus:
            out.setdefault(normalize_action(a), a)
    return out


def match_valid(proposal: str, valid_actions: Sequence[str]) -> Grounded | None:
    """The valid action that *is* the proposal (verbatim or normalized), or None. Cheap: no
    fuzzy matching, and the normalized forms are cached."""
    if proposal in ALWAYS_VALID or proposal in valid_actions:
        return Grounded(action=proposal, method="exact")
    norm = normalize_action(proposal)
    if norm in ALWAYS_VALID:
        return Grounded(action=norm, method="normalized")
    by_norm = _by_norm(_same_verb(proposal, valid_actions), is_focus(proposal))
    # "go to kitchen" and "teleport to kitchen" are both ways to move; prefer what exists.
    for variant in (norm, norm.replace("go to ", "teleport to "),
                    norm.replace("teleport to ", "go to ")):
        if variant in by_norm:
            return Grounded(action=by_norm[variant], method="normalized")
    # "open X" when only "close X" is listed means X is already open: the simulator answers
    # that itself, which is more informative than swapping in an unrelated action.
    for verb, other in _PAIRS:
        if norm.startswith(verb + " "):
            twin = other + norm[len(verb):]
            if twin in by_norm:
                return Grounded(action=verb + by_norm[twin][len(other):], method="normalized")
    return None


def ground(proposal: str, valid_actions: Sequence[str]) -> Grounded:
    """``match_valid``, else a fuzzy match with the same verb (never for a focus); raise
    GroundingError carrying re-ask candidates if neither holds."""
    hit = match_valid(proposal, valid_actions)
    if hit is not None:
        return hit
    wants_focus = is_focus(proposal)
    if not wants_focus:
        verb = verb_of(proposal)
        same_verb = {n: a for n, a in _by_norm(_same_verb(proposal, valid_actions), False).items()
                     if verb_of(a) == verb}
        if same_verb:
            best = process.extractOne(normalize_action(proposal), list(same_verb),
                                      scorer=fuzz.token_sort_ratio)
            if best is not None and float(best[1]) >= FUZZY_ACCEPT:
                return Grounded(action=same_verb[best[0]], method="fuzzy", score=float(best[1]))
    reason = ("the simulator does not know that object to focus on (a wrong focus ends the "
              "task)" if wants_focus else "the simulator does not understand it")
    raise GroundingError(reason, candidates(proposal, valid_actions))


def candidates(proposal: str, valid_actions: Sequence[str], limit: int = CANDIDATES) -> list[str]:
    """Valid actions for a re-ask: the proposal's verb and at least one of its object words
    (a focus only ever offers focus actions on the same object), closest first. Falls back
    to the same objects with another verb, then to the same verb; never to unrelated
    actions."""
    verb, words = verb_of(proposal), object_words(proposal)
    focus = is_focus(proposal)
    pool = [a for a in dict.fromkeys(valid_actions) if is_focus(a) == focus]
    same_verb = [a for a in pool if verb_of(a) == verb]
    tiers = [
        [a for a in same_verb if object_words(a) & words],
        [] if focus else [a for a in pool if object_words(a) & words],
        # an object the simulator does not know: what this verb can act on (never for a
        # focus, whose object is the model's to name)
        [] if focus else same_verb,
    ]
    norm = normalize_action(proposal)
    for tier in tiers:
        if tier:
            ranked = process.extract(norm, [normalize_action(a) for a in tier],
                                     scorer=fuzz.token_set_ratio, limit=limit)
            return [tier[i] for _, _, i in ranked]
    return []


def choose_option(proposal: str, choices: Sequence[str]) -> int | None:
    """Index of the numbered option (of an ambiguous request) that names the same objects as
    the proposal, or None when none clearly does (the agent then asks the model). Options
    that read the same (identical objects in the same place) are interchangeable: the
    first is taken."""
    if not choices:
        return None
    verb, words = verb_of(proposal), object_words(proposal)
    if not words:
        return None
    scored = []
    for i, c in enumerate(choices):
        if verb_of(c) != verb:
            continue
        scored.append((len(words & object_words(c)) / len(words), i))
    if not scored:
        return None
    top = max(s for s, _ in scored)
    best = [i for s, i in scored if s == top]
    if top < CHOICE_ACCEPT:
        return None
    if len({normalize_action(choices[i]) for i in best}) == 1:
        return best[0]
    return None
