"""Fuzzing the parsers that read LLM output (hypothesis, 5,000+ examples in total).

parse_proposal either returns a usable Proposal or raises its documented ProposalParseError;
parse_learnings never raises; every non-empty line is either accepted as
one of the four causal forms or rejected and counted, and the store writes only accepted
ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clin.controller import ProposalParseError, parse_proposal
from clin.memory import Abstraction, Memory, ParseReport, Scope, parse_learnings, parse_line
from clin.memory.abstractions import candidates
from tests.support.tiers import examples

EXAMPLES = {k: examples(n) for k, n in {"proposal_text": 1500, "proposal_json": 1500,
                                         "reflection": 1000, "learnings": 1200,
                                         "store": 60}.items()}
SEEN: dict[str, int] = dict.fromkeys(EXAMPLES, 0)
FAST = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}

VERBS = ["SHOULD BE NECESSARY", "MAY BE NECESSARY", "MAY NOT CONTRIBUTE", "DOES NOT CONTRIBUTE",
         "should be necessary", "might be necessary", "may not contribute", "doesn't contribute"]
CANONICAL = {"should be necessary": "SHOULD BE NECESSARY", "might be necessary": "MAY BE NECESSARY",
             "may not contribute": "MAY NOT CONTRIBUTE", "doesn't contribute": "DOES NOT CONTRIBUTE"}
WRAPS = ["{}", "**{}**", "*{}*", "`{}`", "_{}_"]
word = st.text("abcdefghijklmnopqrstuvwxyz", min_size=2, max_size=8).filter(
    lambda w: w not in {"to", "for", "so", "in", "if", "when", "unless", "that", "towards",
                        "toward", "because", "since", "as"})
phrase = st.lists(word, min_size=1, max_size=5, unique=True).map(" ".join)


def _valid(bullet: str, c: str, wc: str, v: str, link: str, e: str, we: str, dot: str) -> str:
    return f"{bullet}{wc.format(c)} {v} {link} {we.format(e)}{dot}"


valid_line = st.builds(
    _valid, st.sampled_from(["", "- ", "* ", "1. ", "[2] ", "(3) ", "\u2022 ", "3) ", "\u2192 ",
                             "\u25b8 ", "\u2713 "]), phrase,
    st.sampled_from(WRAPS), st.sampled_from(VERBS), st.sampled_from(["to", "for", "in order to"]),
    phrase, st.sampled_from(WRAPS), st.sampled_from(["", ".", ";", "!"]),
).filter(lambda ln: _sound(ln))  # a cause equal to its effect is refused: not "valid"


def _sound(line: str) -> bool:
    cause, _, effect = _expected_key(line).split("|")
    return cause != effect


def _expected_key(line: str) -> str:
    """The key a valid_line must parse to, computed without the parser."""
    body = line.lstrip("-*[]()0123456789.\u2022\u2192\u25b8\u2713 ").rstrip(".;!")
    for verb in VERBS:
        if f" {verb} " in body:
            cause, rest = body.split(f" {verb} ", 1)
            link = next(x for x in ("in order to", "for", "to") if rest.startswith(x + " "))
            effect = rest[len(link) + 1:]
            rel = CANONICAL.get(verb, verb)
            ab = Abstraction(cause=cause.strip("*`_"), effect=effect.strip("*`_"),
                             relation="necessary" if "NECESSARY" in rel else "does-not-contribute",
                             confidence="should" if rel.startswith(("SHOULD", "DOES")) else "may")
            return ab.key
    raise AssertionError(line)
junk_line = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"
                                  "\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"), max_size=120)
json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                max_size=4),
    max_leaves=10,
)


def _check_proposal(text: str) -> None:
    try:
        p = parse_proposal(text)
    except ProposalParseError as exc:
        assert str(exc)  # the message is what the re-ask shows the LLM
        return
    assert isinstance(p.action, str) and p.action.strip() and len(p.action) <= 200
    assert all(isinstance(i, int) and not isinstance(i, bool) for i in p.used_learnings)
    assert len(p.used_learnings) <= 20 and len(p.rationale) <= 500


@settings(max_examples=EXAMPLES["proposal_text"], **FAST)
@given(st.text(max_size=400) | st.builds(
    lambda ids, why, act: f"I used learning id(s): {ids} $$$ {why} ### {act}",
    st.text(max_size=30), st.text(max_size=60), st.text(max_size=60)))
def _fuzz_proposal_text(text: str) -> None:
    SEEN["proposal_text"] += 1
    _check_proposal(text)


@settings(max_examples=EXAMPLES["proposal_json"], **FAST)
@given(
    st.fixed_dictionaries({}, optional={"action": json_value, "rationale": json_value,
                                        "used_learnings": json_value}),
    st.text(max_size=20), st.text(max_size=20), st.integers(0, 200), st.booleans(),
)
def _fuzz_proposal_json(obj: dict, before: str, after: str, cut: int, truncate: bool) -> None:
    SEEN["proposal_json"] += 1
    body = json.dumps(obj)
    if truncate:
        body = body[:cut]  # malformed JSON, as a cut-off answer
    _check_proposal(before + body + after)


def _check_report(report: ParseReport, text: str) -> None:
    parsed = [parse_line(c) for c in candidates(text)]
    assert len(report.rejected) == sum(p is None for p in parsed)
    assert len(report.accepted) == len({p.key for p in parsed if p is not None})
    for ab in report.accepted:  # what is stored is exactly one of the four forms, one line
        again = parse_line(ab.text)
        assert again is not None and again.key == ab.key
        assert (again.relation, again.confidence) == (ab.relation, ab.confidence)
        assert "\n" not in ab.text and "\r" not in ab.text
        assert not any(m in ab.text for m in ("**", "`", "__")), ab.text


@settings(max_examples=EXAMPLES["learnings"], **FAST)
@given(st.lists(valid_line | junk_line, max_size=12))
def _fuzz_learnings(lines: list[str]) -> None:
    SEEN["learnings"] += 1
    text = "\n".join(lines)
    report = parse_learnings(text)
    _check_report(report, text)
    valid = [ln for ln in lines if any(f" {v} " in ln for v in VERBS) and "\n" not in ln]
    if len(valid) == len(lines):  # only generated abstractions: every one is accepted as is
        assert {a.key for a in report.accepted} == {_expected_key(ln) for ln in valid}


@settings(max_examples=EXAMPLES["reflection"], **FAST)
@given(
    st.lists(valid_line | junk_line | json_value, max_size=8),
    st.booleans(), st.text(max_size=30),
)
def _fuzz_reflection(items: list, as_json: bool, chatter: str) -> None:
    SEEN["reflection"] += 1
    text = (chatter + json.dumps({"learnings": items}) if as_json
            else "\n".join(str(i) for i in items))
    report = parse_learnings(text)
    # A {"learnings": [...]} answer means exactly its string (and number) items, whatever
    # chatter comes first; any other answer is read line by line.
    json_found = as_json and "{" not in chatter
    body = ("\n".join(str(i) for i in items if isinstance(i, (str, int))) if json_found
            else text)
    expected = parse_learnings(body)
    assert [a.key for a in report.accepted] == [a.key for a in expected.accepted]
    assert len(report.rejected) == len(expected.rejected)
    for ab in report.accepted:
        assert isinstance(ab, Abstraction) and parse_line(ab.text) is not None


def test_fuzz_controller_parser() -> None:
    _fuzz_proposal_text()
    _fuzz_proposal_json()
    assert SEEN["proposal_text"] >= EXAMPLES["proposal_text"]
    assert SEEN["proposal_json"] >= EXAMPLES["proposal_json"]


def test_fuzz_learning_and_reflection_parsers() -> None:
    _fuzz_learnings()
    _fuzz_reflection()
    assert SEEN["learnings"] >= EXAMPLES["learnings"]
    assert SEEN["reflection"] >= EXAMPLES["reflection"]


def test_fuzz_store_keeps_only_causal_forms(tmp_path: Path) -> None:
    """Whatever the reflection says, the scope stores exactly the accepted lines and counts
    the rejected ones on the trial."""
    with Memory(tmp_path / "fuzz.db") as mem:

        @settings(max_examples=EXAMPLES["store"], **FAST)
        @given(st.lists(valid_line | junk_line, max_size=10))
        def prop(lines: list[str]) -> None:
            SEEN["store"] += 1
            n = SEEN["store"]
            scope = Scope(env="fuzz", task="store", variation=str(n))
            run_id = mem.start_run(scope=scope)
            trial_id = mem.start_trial(run_id, 1, scope)
            report = parse_learnings("\n".join(lines))
            mem.finish_trial(trial_id, score=0.0, completed=False, stop_reason="fuzz",
                             reflection=report, scope=scope)
            stored = {r.text for r in mem.recall(scope)}
            assert stored == {a.text for a in report.accepted}
            assert all(parse_line(t) is not None for t in stored)
            (rejected,) = mem.db.execute(
                "SELECT learnings_rejected FROM trials WHERE id = ?", [trial_id]).fetchone()
            assert rejected == len(report.rejected)

        prop()
    assert SEEN["store"] >= EXAMPLES["store"]


@pytest.mark.parametrize("text", ["", "   ", "\n\n", "{}", '{"action": ""}', "Let me think."])
def test_no_action_is_the_documented_error(text: str) -> None:
    with pytest.raises(ProposalParseError):
        parse_proposal(text)
