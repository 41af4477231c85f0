"""Causal abstractions: the four sentence forms of the CLIN paper, parsed into typed rows.

A learning is exactly one of::

    X SHOULD BE NECESSARY to Y      relation=necessary        confidence=should
    X MAY BE NECESSARY to Y         relation=necessary        confidence=may
    X MAY NOT CONTRIBUTE to Y       relation=does-not-contribute confidence=may
    X DOES NOT CONTRIBUTE to Y      relation=does-not-contribute confidence=should

The parser accepts the renderings LLMs actually write: any case, "to" / "for" / "in order
to" / "so that" before Y, "might" for "may", "do not" / "doesn't" for "does not", numbering,
bullets (any glyph: "-", "•", "→", "▸", "✓" ...), markdown emphasis, XML-style tags
(``<learning>...</learning>``, ``<learnings>``), quotes, trailing periods, a JSON list, a
preamble or a closing sentence around the list, a condition ("... if the stove is broken",
kept in Y). What it stores is clean text in the canonical spelling above
(``Abstraction.text``) plus a normalized ``key``. Anything else is rejected, with its reason
counted (``ParseReport.reasons``), so observation text or chatter from an LLM can never
become a stored learning; nor can a degenerate one in the right form (cause equal to effect,
a run of digits, a phrase repeated, a side longer than a sentence), as small models write.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from collections.abc import Iterator
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, Field

Relation = Literal["necessary", "does-not-contribute"]
Confidence = Literal["should", "may"]


class Form(NamedTuple):
    """One of the four learning forms: its canonical verb and what it means."""

    verb: str
    relation: Relation
    confidence: Confidence


# The one definition of the four forms, in the order prompts list them. Prompts (reflection,
# meta-memory), the structured-output pattern, the parser, error messages and the README
# table are generated from it or checked against it (tests/memory/test_abstractions.py).
FORMS: tuple[Form, ...] = (
    Form("SHOULD BE NECESSARY", "necessary", "should"),
    Form("MAY BE NECESSARY", "necessary", "may"),
    Form("MAY NOT CONTRIBUTE", "does-not-contribute", "may"),
    Form("DOES NOT CONTRIBUTE", "does-not-contribute", "should"),
)
VERBS: tuple[str, ...] = tuple(f.verb for f in FORMS)
# The forms as a regular-expression group (JSON schemas and llama.cpp grammars use it).
FORMS_PATTERN = "(" + "|".join(VERBS) + ")"
# What a user or an LLM is told when a sentence is in none of the forms.
FORMS_HELP = "write exactly one of: " + ", ".join(f"'X {v} to Y'" for v in VERBS)
_VERB = {(f.relation, f.confidence): f.verb for f in FORMS}
_APOS = "['\u2019]"
# The four relations, in every spelling we accept; the named group (the initials of the
# canonical verb) says which one matched.
_RELATION = (
    r"(?:(?P<sn>should\s+be\s+necessary)"
    r"|(?P<mn>(?:may|might|could)\s+be\s+necessary)"
    r"|(?P<mc>(?:may|might)\s+not\s+contribute)"
    rf"|(?P<dc>(?:does|do)\s+not\s+contribute|(?:doesn|don){_APOS}t\s+contribute))"
)
_GROUPS = ("sn", "mn", "mc", "dc")  # in the order of FORMS
_LINK = r"(?P<link>in\s+order\s+to|so\s+that|towards?|to|for)"
_FORWARD = re.compile(
    rf"^(?P<cause>.+?)\s+{_RELATION}\s+{_LINK}\s+(?P<effect>.+)$", re.IGNORECASE
)
# "To boil water, heating the pot SHOULD BE NECESSARY": the effect comes first.
_BACKWARD = re.compile(
    rf"^(?:in\s+order\s+to|to|for)\s+(?P<effect>[^,]+),\s+(?P<cause>.+?)\s+{_RELATION}$",
    re.IGNORECASE,
)
_ANY_RELATION = re.compile(_RELATION, re.IGNORECASE)
_LEADING_CONDITION = re.compile(r"^(?P<word>if|when|unless)\s+(?P<cond>[^,]{3,120}),\s+(?P<rest>.+)$",
                                re.IGNORECASE)
_MARKER = re.compile(
    r"^\s*(?:>+\s*|#{1,6}\s+|[-*+\u2022\u25cf\u25aa\u2013\u2014]+\s+|\[[ xX]\]\s+"
    r"|\(?\[?(?:\d{1,3}|[a-zA-Z])[.):\]]\]?\s+|\(\d{1,3}\)\s+)"
)
_LABEL = re.compile(
    r"^(?:(?:new\s+|updated\s+|kept\s+|revised\s+)?(?:learning|abstraction|insight|lesson|rule)"
    r"(?:\s*#?\s*\d{1,3})?|note|format)\s*[:.)-]\s*",
    re.IGNORECASE,
)
_FILLER = re.compile(
    r"^(?:(?:i|we|the\s+agent)\s+(?:have\s+)?(?:learned|learnt|found|noticed|observed|believe|think)"
    r"\s+that|it\s+(?:seems|appears)\s+that|(?:so|therefore|thus|also|finally|overall),?)\s+",
    re.IGNORECASE,
)
_EMPHASIS = re.compile(r"\*\*|__|~~|`+|(?<![\w*])[*_](?=\S)|(?<=\S)[*_](?![\w*])")
_QUOTES = "\"'\u201c\u201d\u2018\u2019`"
_SENTENCE_END = re.compile(r"[.!?]\s+(?=[\"'\u201c(\[]?[A-Z0-9])|:\s+")
_TRAILING_NOTE = re.compile(
    r"(?:\s*\([^()]*\)|\s+(?:--?|\u2014|\u2013)\s+.*|,?\s+(?:because|since|as\s+shown|as\s+seen)\s+.*)$",
    re.IGNORECASE,
)
_HEDGE_CAUSE = re.compile(
    r"^(?:whether|if|it\s+is\s+(?:unclear|not\s+clear|unknown)|unclear|not\s+sure|i\s+wonder)\b",
    re.IGNORECASE,
)
_FENCE = re.compile(r"^\s*```[\w-]*\s*$")
# XML-style tags as strong models wrap their answers (<learnings>, <learning id="1">): inline
# ones vanish, any other ends a line.
_INLINE_TAG = re.compile(r"</?(?:b|i|em|strong|code|u|mark|span|s)\b[^<>]{0,200}>", re.IGNORECASE)
_TAG = re.compile(r"</?[A-Za-z][\w:-]{0,40}(?:\s[^<>]{0,200})?/?>")
# Bullet glyphs beyond ASCII and the usual dots: any symbol (arrows, triangles, check marks,
# stars, emoji) and these punctuation bullets.
_BULLET_PUNCT = set("\u2022\u2023\u2043\u2219\u00b7\u25e6\u2027\u30fb")
_DIGIT_RUN = re.compile(r"\d{5,}")
_MAX_WORDS = 25  # a side longer than this is not one short sentence's worth

# Why a candidate was rejected (ParseReport.reasons counts them).
NOT_A_FORM = "not one of the four forms"
SAME_CAUSE_EFFECT = "cause equals effect"
DIGIT_RUN = "a run of digits"
REPEATED = "a phrase repeated"
TOO_LONG = "a side longer than a sentence"
_MAX_PART = 300
_MAX_LINE = 2000
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
        """The canonical sentence: ``cause VERB to effect`` with the verb in capitals (an
        effect that is a clause keeps its "so that" instead of "to")."""
        verb = _VERB[(self.relation, self.confidence)]
        link = "" if self.effect.lower().startswith("so that ") else "to "
        return f"{self.cause} {verb} {link}{self.effect}"

    @property
    def key(self) -> str:
        """Normalized identity: near-identical phrasings share one key (dedup, support)."""
        return f"{normalize(self.cause)}|{self.relation}|{normalize(self.effect)}"


class ParseReport(BaseModel):
    """Result of parsing an LLM's learnings block: accepted abstractions, rejected lines, and
    how many were rejected for each reason (:data:`NOT_A_FORM`, :data:`SAME_CAUSE_EFFECT`,
    :data:`DIGIT_RUN`, :data:`REPEATED`, :data:`TOO_LONG`)."""

    accepted: list[Abstraction] = Field(default_factory=list)
    rejected: list[str] = Field(default_factory=list)
    reasons: dict[str, int] = Field(default_factory=dict)


def normalize(phrase: str) -> str:
    """Lower-case words without articles, so 'Opening the seed jar' == 'opening seed jar'."""
    return " ".join(w for w in _WORD.findall(phrase.lower()) if w not in _STOP)


def _strip_tags(text: str) -> str:
    return _TAG.sub("\n", _INLINE_TAG.sub("", text))


def _strip_glyphs(text: str) -> str:
    """Leading bullet glyphs: symbols (→ ▸ ✓ ★ ➤, emoji) and punctuation bullets."""
    i = 0
    while i < len(text) and (text[i] in _BULLET_PUNCT or text[i].isspace()
                             or unicodedata.category(text[i]) in ("So", "Sm", "Sk")):
        i += 1
    return text[i:]


def _clean(text: str) -> str:
    """One candidate without markup: tags, emphasis, list markers and bullet glyphs, labels,
    quotes, end punctuation."""
    text = " ".join(_INLINE_TAG.sub("", text).split())
    text = " ".join(_TAG.sub(" ", text).split())
    for _ in range(4):  # markers stack: "- 1. **Learning 2:** ..."
        before = text
        text = _EMPHASIS.sub("", text).strip()
        text = _strip_glyphs(text).strip()
        text = _MARKER.sub("", text, count=1).strip()
        text = _LABEL.sub("", text, count=1).strip()
        text = text.strip(_QUOTES).rstrip(".;,!").strip().strip(_QUOTES).strip()
        if text == before:
            break
    return text


def _part(text: str) -> str:
    return " ".join(text.strip().strip(_QUOTES).strip(" ,;:").strip(_QUOTES).split())


def _degenerate(cause: str, effect: str) -> str | None:
    """Why a learning in the right form says nothing (small models write these), or None."""
    if normalize(cause) == normalize(effect):
        return SAME_CAUSE_EFFECT
    if _DIGIT_RUN.search(cause) or _DIGIT_RUN.search(effect):
        return DIGIT_RUN
    if len(cause.split()) > _MAX_WORDS or len(effect.split()) > _MAX_WORDS:
        return TOO_LONG
    if _repeats(cause) or _repeats(effect):
        return REPEATED
    return None


def _repeats(side: str) -> bool:
    """A phrase said twice in one side: any words said twice in a row ("the hallway, the
    hallway"), or three words said twice anywhere ("flower pot 1 ... flower pot 2" is fine)."""
    words = [w for w in _WORD.findall(side.lower()) if w not in _STOP]
    n = len(words)
    for size in range(1, n // 2 + 1):
        for i in range(n - 2 * size + 1):
            if words[i:i + size] == words[i + size:i + 2 * size]:
                return True
    grams = [tuple(words[i:i + 3]) for i in range(n - 2)]
    seen: dict[tuple[str, ...], int] = {}
    for i, g in enumerate(grams):
        if g in seen and i - seen[g] >= 3:
            return True
        seen.setdefault(g, i)
    return False


def _build(cause: str, effect: str, match: re.Match[str], condition: str = "") -> Abstraction | str:
    # A preamble sentence on the same line ("Here is what I learned. X SHOULD ...") is not
    # part of the cause; a closing sentence after the effect is not part of the effect.
    pieces = _SENTENCE_END.split(cause)
    cause = _FILLER.sub("", _part(pieces[-1]))
    effect = _part(_SENTENCE_END.split(effect)[0])
    for _ in range(2):
        effect = _part(_TRAILING_NOTE.sub("", effect))
    effect = effect.rstrip(".;,!")
    if condition:
        effect = f"{effect} {condition}"
    if effect.endswith("?") or cause.endswith("?") or _HEDGE_CAUSE.match(cause):
        return NOT_A_FORM
    if not _LETTERS.search(cause) or not _LETTERS.search(effect):
        return NOT_A_FORM
    if len(cause) > _MAX_PART or len(effect) > _MAX_PART:
        return NOT_A_FORM
    if _ANY_RELATION.search(cause) or _ANY_RELATION.search(effect):
        return NOT_A_FORM  # two relations in one sentence: ambiguous
    form = next(f for f, g in zip(FORMS, _GROUPS) if match.group(g))
    relation, confidence = form.relation, form.confidence
    if "that" in (match.groupdict().get("link") or "").lower():
        effect = f"so that {effect}"
    if len(effect) > _MAX_PART:
        return NOT_A_FORM
    reason = _degenerate(cause, effect)
    if reason is not None:
        return reason
    return Abstraction(cause=cause, effect=effect, relation=relation, confidence=confidence)


def parse_line(line: str) -> Abstraction | None:
    """Parse one sentence into an Abstraction, or None when it is not one of the four forms
    or is degenerate (:func:`parse_candidate` says why)."""
    parsed = parse_candidate(line)
    return parsed if isinstance(parsed, Abstraction) else None


def parse_candidate(line: str) -> Abstraction | str:
    """Parse one sentence into an Abstraction, or the reason it is refused."""
    if not isinstance(line, str) or len(line) > _MAX_LINE:
        return NOT_A_FORM
    text = _clean(line)
    if not text or text.endswith("?"):
        return NOT_A_FORM
    condition = ""
    cond = _LEADING_CONDITION.match(text)
    if cond and _FORWARD.match(cond.group("rest")):
        text = cond.group("rest")
        condition = f"{cond.group('word').lower()} {_part(cond.group('cond'))}"
    m = _FORWARD.match(text)
    if m is not None:
        return _build(m.group("cause"), m.group("effect"), m, condition)
    m = _BACKWARD.match(text)
    if m is not None and not condition:
        return _build(m.group("cause"), m.group("effect"), m)
    return NOT_A_FORM


def _sentences(line: str) -> list[str]:
    """A line holding several relations ("1. A ... 2. B ...", "A ...; B ...") split into
    one candidate per sentence; any other line is one candidate."""
    if len(_ANY_RELATION.findall(line)) < 2:
        return [line]
    parts = [p for p in re.split(r"(?<=[.;!])\s+|\s+(?=\(?\d{1,2}[.)]\s)", line) if p.strip()]
    out: list[str] = []
    for part in parts:  # a bare "2." left by the split belongs to the sentence after it
        if out and re.fullmatch(r"\(?\d{1,3}[.)]", out[-1].strip()):
            out[-1] = f"{out[-1]} {part}"
        else:
            out.append(part)
    return out


_JSON_KEYS = ("learnings", "abstractions", "insights", "lessons", "memory", "rules")
_TEXT_KEYS = ("text", "learning", "abstraction", "insight", "lesson", "rule")


def _json_items(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value[:200]:
            if isinstance(item, (str, int)):  # a number is an item, rejected and counted
                yield str(item)
            elif isinstance(item, dict):
                text = next((item[k] for k in _TEXT_KEYS if isinstance(item.get(k), str)), None)
                parts = [item.get(k) for k in ("cause", "relation", "effect")]
                if text is not None:
                    yield text
                elif all(isinstance(p, str) for p in parts):  # {"cause", "relation", "effect"}
                    yield f"{parts[0]} {parts[1]} to {parts[2]}"
    elif isinstance(value, dict):
        for k in _JSON_KEYS:
            if k in value:
                yield from _json_items(value[k])
                return


_LIST_START = re.compile(r"^[ \t]*\[", re.MULTILINE)
_LIST_END = re.compile(r"\][ \t]*$", re.MULTILINE)


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def _find_json(text: str) -> list[str] | None:
    """The learnings of a JSON answer, or None when the answer holds none: an object with a
    learnings list (from its first "{" to its last "}", whatever chatter is around it), or
    a list that starts and ends on lines of its own (a "[2] ..." bullet is not one)."""
    start, end = text.find("{"), text.rfind("}")
    if start != -1 and end > start:
        data = _loads(text[start : end + 1])
        if isinstance(data, dict) and any(k in data for k in _JSON_KEYS):
            return list(_json_items(data))
    opens, closes = _LIST_START.search(text), list(_LIST_END.finditer(text))
    if opens is not None and closes:
        data = _loads(text[opens.end() - 1 : closes[-1].start() + 1])
        if isinstance(data, list) and any(isinstance(x, (str, dict)) for x in data):
            return list(_json_items(data))  # (a "[]" line is no answer: lines are read)
    return None


def candidates(text: str) -> list[str]:
    """The candidate sentences of an answer, in order: the items of a JSON answer (the
    chatter around it is not part of the answer) or else its lines, split where one line
    holds several relations; blank and pure markup lines (code fences, brackets) are
    dropped."""
    items = _find_json(text)
    lines = _strip_tags(text).splitlines() if items is None else [
        line for item in items for line in _strip_tags(item).splitlines()]
    out: list[str] = []
    for raw in lines:
        line = raw.strip()
        if not line or _FENCE.match(line) or not re.search(r"\w", line):
            continue
        if line.startswith("|") and line.endswith("|"):  # a markdown table row: its cells
            cells = [c.strip() for c in line.strip("|").split("|")]
            rel = [i for i, c in enumerate(cells) if _ANY_RELATION.fullmatch(_clean(c))]
            if len(rel) == 1 and 0 < rel[0] < len(cells) - 1:  # | X | RELATION | Y |
                i = rel[0]
                out.append(f"{cells[i - 1]} {_clean(cells[i])} to {cells[i + 1]}")
            else:
                out.extend(c for c in cells if re.search(r"[A-Za-z]", c))
            continue
        out.extend(p.strip() for p in _sentences(line))
    return out


def parse_learnings(text: str) -> ParseReport:
    """Parse an LLM's answer (plain lines, markdown, prose around a list, or JSON) into
    abstractions; never raises. Every candidate is accepted or rejected (and kept, clipped,
    in ``rejected`` so callers can count it)."""
    report = ParseReport()
    if not isinstance(text, str):
        return report
    seen: set[str] = set()
    reasons: Counter[str] = Counter()
    for line in candidates(text[:100_000]):
        parsed = parse_candidate(line)
        if isinstance(parsed, str):
            report.rejected.append(line[:500])
            reasons[parsed] += 1
        elif parsed.key not in seen:
            seen.add(parsed.key)
            report.accepted.append(parsed)
    report.reasons = dict(reasons)
    return report
