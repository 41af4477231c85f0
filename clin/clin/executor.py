"""The executor: decide what to send for a proposed action, without losing a good plan.

The agent (``clin.agent``) tries, in order:

1. ``match_valid``: the proposal is one of the environment's valid actions, verbatim
   (``exact``) or after normalization (case, punctuation, articles, synonyms: ``normalized``).
2. The environment's own parser: the proposal is sent unchanged (``parser``). A simulator
   may accept forms its valid-action list spells differently ("pick up metal pot" for a pot
   listed as "metal pot containing water"); a command it cannot parse answers without
   ticking the world (``Observation.understood`` is False), so trying costs one simulator
   call and nothing else. The parser is the authority on which object a name means: no
   Python copy of it can drift from it.
3. ``ground``: a close valid action with the same verb (``fuzzy``); never for a protected
   verb (the profile's, e.g. a focus), whose object is never changed.
4. Only when nothing can be sent: a re-ask whose candidates share the proposal's verb and
   objects (``candidates``).

What the words mean is the environment's: a :class:`Lexicon` is built from its
:class:`~clin.envs.base.EnvProfile` (verbs, synonyms, opposites, always-valid commands).
An ambiguous command (numbered options) is answered by
``choose_option``: the option that names the same objects as the proposal; when none clearly
does, the agent asks the model with the options (``asked``), never guesses.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

from pydantic import BaseModel
from rapidfuzz import fuzz, process

from clin.envs.base import EnvProfile
from clin.memory import GroundingKind

from .errors import GroundingError

__all__ = ["Grounded", "GroundingKind", "Lexicon", "lexicon"]

FUZZY_ACCEPT = 88.0
CANDIDATES = 8
CHOICE_ACCEPT = 0.5  # share of the proposal's object words an option must name

_ARTICLES = re.compile(r"\b(the|a|an|some)\b")
_NONWORD = re.compile(r"[^a-z0-9 ]+")


class Grounded(BaseModel):
    action: str
    method: GroundingKind
    score: float = 100.0


@lru_cache(maxsize=32)
def lexicon(profile: EnvProfile) -> Lexicon:
    """The lexicon of an environment's profile (one per profile: its caches are shared)."""
    return Lexicon(profile)


class Lexicon:
    """How one environment's commands read: normalizing, verbs, grounding, options."""

    def __init__(self, profile: EnvProfile) -> None:
        self.always_valid = tuple(profile.always_valid)
        self._synonyms = [(re.compile(p), r) for p, r in profile.synonyms]
        self._pairs = [pair for a, b in profile.opposites for pair in ((a, b), (b, a))]
        self._verbs = sorted(profile.verbs, key=len, reverse=True)  # longest first
        self._moves = tuple(profile.moves)
        # by first word, as a model may misspell the rest ("focus the seed")
        self._protected = tuple(v.split()[0] for v in profile.protected if v.split())
        self._joiners = profile.joiners
        # Cached: the same valid actions come back step after step, up to thousands a room.
        self.normalize = lru_cache(maxsize=65536)(self._normalize)
        self.verb_of = lru_cache(maxsize=65536)(self._verb_of)
        self.object_words = lru_cache(maxsize=65536)(self._object_words)

    def _normalize(self, text: str) -> str:
        t = _NONWORD.sub(" ", text.lower())
        t = " ".join(t.split())
        for pattern, repl in self._synonyms:
            t = pattern.sub(repl, t)
        t = _ARTICLES.sub(" ", t)
        return " ".join(t.split())

    def is_protected(self, text: str) -> bool:
        """A command whose object must never be swapped for a close one."""
        return bool(self._protected) and text.strip().lower().startswith(self._protected)

    def _verb_of(self, text: str) -> str:
        """The template verb of an action ("pick up", "move", "focus on"), or its first word."""
        norm = self.normalize(text)
        for verb in self._verbs:
            if norm == verb or norm.startswith(verb + " "):
                return verb
        return norm.split(" ", 1)[0] if norm else ""

    def _object_words(self, text: str) -> frozenset[str]:
        """The words that name objects (and their containers) in an action or an option."""
        norm = self.normalize(text)
        rest = norm[len(self.verb_of(text)):].split()
        return frozenset(w for w in rest if w not in self._joiners)

    def _same_verb(self, proposal: str, valid: Sequence[str]) -> list[str]:
        """The valid actions that start with the proposal's verb (or its twin: open/close,
        go to/teleport to). A C-level prefix test: a room can list ~1,500 actions and only
        these few need normalizing. Every valid action if none starts so (odd casing)."""
        verb = self.verb_of(proposal)
        verbs = {verb, *(other for v, other in self._pairs if v == verb)}
        if verb in self._moves:
            verbs.update(self._moves)
        prefixes = tuple(v + " " for v in verbs if v)
        pool = [a for a in valid if a.startswith(prefixes)]
        return pool or list(valid)

    def _by_norm(self, valid: Sequence[str], protected: bool) -> dict[str, str]:
        out: dict[str, str] = {}
        for a in valid:
            if self.is_protected(a) == protected:
                out.setdefault(self.normalize(a), a)
        return out

    def match_valid(self, proposal: str, valid_actions: Sequence[str]) -> Grounded | None:
        """The valid action that *is* the proposal (verbatim or normalized), or None. Cheap:
        no fuzzy matching, and the normalized forms are cached."""
        if proposal in self.always_valid or proposal in valid_actions:
            return Grounded(action=proposal, method="exact")
        norm = self.normalize(proposal)
        if norm in self.always_valid:
            return Grounded(action=norm, method="normalized")
        by_norm = self._by_norm(self._same_verb(proposal, valid_actions),
                                self.is_protected(proposal))
        if norm in by_norm:
            return Grounded(action=by_norm[norm], method="normalized")
        # "go to kitchen" and "teleport to kitchen" are both ways to move; prefer what exists.
        for verb in self._moves:
            if norm.startswith(verb + " "):
                for other in self._moves:
                    variant = other + norm[len(verb):]
                    if variant in by_norm:
                        return Grounded(action=by_norm[variant], method="normalized")
        # "open X" when only "close X" is listed means X is already open: the simulator
        # answers that itself, which is more informative than swapping in an unrelated action.
        for verb, other in self._pairs:
            if norm.startswith(verb + " "):
                twin = other + norm[len(verb):]
                if twin in by_norm:
                    return Grounded(action=verb + by_norm[twin][len(other):],
                                    method="normalized")
        return None

    def ground(self, proposal: str, valid_actions: Sequence[str]) -> Grounded:
        """``match_valid``, else a fuzzy match with the same verb (never for a protected
        verb); raise GroundingError carrying re-ask candidates if neither holds."""
        hit = self.match_valid(proposal, valid_actions)
        if hit is not None:
            return hit
        protected = self.is_protected(proposal)
        if not protected:
            verb = self.verb_of(proposal)
            same_verb = {n: a for n, a in
                         self._by_norm(self._same_verb(proposal, valid_actions), False).items()
                         if self.verb_of(a) == verb}
            if same_verb:
                best = process.extractOne(self.normalize(proposal), list(same_verb),
                                          scorer=fuzz.token_sort_ratio)
                if best is not None and float(best[1]) >= FUZZY_ACCEPT:
                    return Grounded(action=same_verb[best[0]], method="fuzzy",
                                    score=float(best[1]))
        verb = self.verb_of(proposal)
        reason = (f"the simulator does not know that object to {verb} (a wrong "
                  f"{verb.split(' ')[0]} ends the task)" if protected
                  else "the simulator does not understand it")
        raise GroundingError(reason, self.candidates(proposal, valid_actions))

    def candidates(self, proposal: str, valid_actions: Sequence[str],
                   limit: int = CANDIDATES) -> list[str]:
        """Valid actions for a re-ask: the proposal's verb and at least one of its object
        words (a protected verb only ever offers itself on the same object), closest first.
        Falls back to the same objects with another verb, then to the same verb; never to
        unrelated actions."""
        verb, words = self.verb_of(proposal), self.object_words(proposal)
        protected = self.is_protected(proposal)
        pool = [a for a in dict.fromkeys(valid_actions) if self.is_protected(a) == protected]
        same_verb = [a for a in pool if self.verb_of(a) == verb]
        tiers = [
            [a for a in same_verb if self.object_words(a) & words],
            [] if protected else [a for a in pool if self.object_words(a) & words],
            # an object the simulator does not know: what this verb can act on (never for a
            # protected verb, whose object is the model's to name)
            [] if protected else same_verb,
        ]
        norm = self.normalize(proposal)
        for tier in tiers:
            if tier:
                ranked = process.extract(norm, [self.normalize(a) for a in tier],
                                         scorer=fuzz.token_set_ratio, limit=limit)
                return [tier[i] for _, _, i in ranked]
        return []

    def choose_option(self, proposal: str, choices: Sequence[str]) -> int | None:
        """Index of the numbered option (of an ambiguous request) that names the same
        objects as the proposal, or None when none clearly does (the agent then asks the
        model). Options that read the same (identical objects in the same place) are
        interchangeable: the first is taken."""
        if not choices:
            return None
        verb, words = self.verb_of(proposal), self.object_words(proposal)
        if not words:
            return None
        scored = []
        for i, c in enumerate(choices):
            if self.verb_of(c) != verb:
                continue
            scored.append((len(words & self.object_words(c)) / len(words), i))
        if not scored:
            return None
        top = max(s for s, _ in scored)
        best = [i for s, i in scored if s == top]
        if top < CHOICE_ACCEPT:
            return None
        if len({self.normalize(choices[i]) for i in best}) == 1:
            return best[0]
        return None
