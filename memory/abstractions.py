"""Causal abstractions: the four sentence forms of the CLIN paper, parsed into typed rows.

A learning is exactly one of::

    X SHOULD BE NECESSARY to Y      relation=necessary        confidence=should
    X MAY BE NECESSARY to Y         relation=necessary        confidence=may
    X MAY NOT CONTRIBUTE to Y       relation=does-not-contribute confidence=may
    X DOES NOT CONTRIBUTE to Y      relation=does-not-contribute confidence=should

Anything else is rejected (and counted by the caller), so observation text or chatter from an
LLM can never become a stored learning.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, Field

Relation = Literal["necessary", "does-not-contribute"]
Confidence = Literal["should", "may"]

_FORMS: dict[str, tuple[Relation, Confidence]] = {
    "SHOULD BE NECESSARY": ("necessary", "should"),
    "MAY BE NECESSARY": ("necessary", "may"),
    "MAY NOT CONTRIBUTE": ("does-not-contribute", "may"),
    "DOES NOT CONTRIBUTE": ("does-not-contribute", "should"),
}
_VERB = {v: k for k, v in _FORMS.items()}

# Leading list markers the LLM tends to add: "1.", "-", "*", "[3]", "3)".
_BULLET = re.compile(r"^\s*(?:[-*\u2022]+|\[?\d{1,3}[.):\]]|\(\d{1,3}\))\s*")
_LINE = re.compile(
    r"^(?P<cause>.+?)\s+(?P<verb>SHOULD\s+BE\s+NECESSARY|MAY\s+BE\s+NECESSARY|"
    r"MAY\s+NOT\s+CONTRIBUTE|DOES\s+NOT\s+CONTRIBUTE)\s+(?:TO|to|To)\s+(?P<effect>.+?)\s*$"
)
_MAX_PART = 300
_WORD = re.compile(r"[a-z0-9]+")
_LETTERS = re.compile(r"[A-Za-z]{2,}")
_STOP = {"a", "an", "the", "to", "of", "in", "on", "into", "some", "any"}


class Abstraction(BaseModel):
    """One causal abstraction: ``cause`` <relation, confidence> ``effect``."""

    cause: str = Field(min_length=1, max_length=_MAX_PART)
    effect: str = Field(min_length=1, max_length=_MAX_PART)
    relation: Relation
    confidence: Confidence

    @property
    def text(self) -> str:
        return f"{self.cause} {_VERB[(self.relation, self.confidence)]} to {self.effect}"

    @property
    def key(self) -> str:
        """Normalized identity: near-identical phrasings share one key (dedup, support)."""
        return f"{normalize(self.cause)}|{self.relation}|{normalize(self.effect)}"


class ParseReport(BaseModel):
    """Result of parsing an LLM's learnings block: accepted abstractions and rejected lines."""

    accepted: list[Abstraction] = Field(default_factory=list)
    rejected: list[str] = Field(default_factory=list)


def normalize(phrase: str) -> str:
    """Lower-case words without articles, so 'Opening the seed jar' == 'opening seed jar'."""
    return " ".join(w for w in _WORD.findall(phrase.lower()) if w not in _STOP)


def parse_line(line: str) -> Abstraction | None:
    """Parse one line into an Abstraction, or None when it is not one of the four forms."""
    if not isinstance(line, str):
        return None
    text = _BULLET.sub("", line.strip(), count=1).strip().strip("\"'`").rstrip(".;,").strip()
    m = _LINE.match(text)
    if m is None:
        return None
    cause = m.group("cause").strip().strip("\"'`").strip()
    effect = m.group("effect").strip().strip("\"'`").strip()
    if not _LETTERS.search(cause) or not _LETTERS.search(effect):
        return None
    if len(cause) > _MAX_PART or len(effect) > _MAX_PART:
        return None
    verb = " ".join(m.group("verb").split())
    relation, confidence = _FORMS[verb]
    return Abstraction(cause=cause, effect=effect, relation=relation, confidence=confidence)


def parse_learnings(text: str) -> ParseReport:
    """Parse a block of text, one candidate per non-empty line; never raises."""
    report = ParseReport()
    if not isinstance(text, str):
        return report
    seen: set[str] = set()
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        parsed = parse_line(line)
        if parsed is None:
            report.rejected.append(line[:500])
        elif parsed.key not in seen:
            seen.add(parsed.key)
            report.accepted.append(parsed)
    return report
