import json
import re
from pathlib import Path

import pytest
from clin.memory import Abstraction, parse_learnings, parse_line


def test_four_forms_parse_into_relation_and_confidence() -> None:
    cases = {
        "opening the seed jar SHOULD BE NECESSARY to planting a seed": ("necessary", "should"),
        "watering the pot MAY BE NECESSARY to growing a plant": ("necessary", "may"),
        "looking at the sky MAY NOT CONTRIBUTE to growing a plant": ("does-not-contribute", "may"),
        "going to the workshop DOES NOT CONTRIBUTE to growing a plant": (
            "does-not-contribute", "should"),
    }
    for line, (relation, confidence) in cases.items():
        ab = parse_line(line)
        assert ab is not None, line
        assert (ab.relation, ab.confidence) == (relation, confidence)
        assert ab.text == line


def test_bullets_and_case_of_to_are_tolerated() -> None:
    ab = parse_line("3. Opening the door SHOULD BE NECESSARY To entering the kitchen.")
    assert ab is not None
    assert ab.cause == "Opening the door"
    assert ab.effect == "entering the kitchen"


def test_malformed_lines_are_rejected_and_counted() -> None:
    text = "\n".join([
        "Learnings:",
        "opening the jar SHOULD BE NECESSARY to planting",
        "the plant grows when watered",
        "SHOULD BE NECESSARY to planting",
        "1, 2, 3 DOES NOT CONTRIBUTE to 4, 5",
        "You see a door. MAY BE NECESSARY",
    ])
    report = parse_learnings(text)
    assert [a.text for a in report.accepted] == ["opening the jar SHOULD BE NECESSARY to planting"]
    assert len(report.rejected) == 5


def test_near_duplicates_share_a_key() -> None:
    a = parse_line("Opening the seed jar SHOULD BE NECESSARY to planting a seed")
    b = parse_line("opening seed jar MAY BE NECESSARY to planting the seed")
    assert a and b and a.key == b.key
    report = parse_learnings(f"{a.text}\n{b.text}")
    assert len(report.accepted) == 1


CORPUS = Path(__file__).parent / "data" / "reflection_answers.jsonl"
MARKUP = re.compile(r"\*|`|__|~~|^\s*[-#>|]|^\s*\d+[.)]\s")


def test_corpus_of_model_answers_parses_like_a_careful_reader() -> None:
    """>= 98% of the abstractions in 200+ answers (plain, markdown, numbered, JSON, prose
    around, mixed with look-alike sentences) are accepted; no non-abstraction is."""
    records = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()]
    assert len(records) >= 200
    expected_total = found = 0
    wrong: list[str] = []
    for rec in records:
        report = parse_learnings(rec["answer"])
        expected = {Abstraction(**e).key for e in rec["expected"]}
        got = {a.key: a for a in report.accepted}
        expected_total += len(expected)
        found += len(expected & got.keys())
        wrong += [got[k].text for k in got.keys() - expected]
        for ab in report.accepted:
            assert not MARKUP.search(ab.cause) and not MARKUP.search(ab.effect), ab.text
            assert ab.cause == ab.cause.strip("\"'.; ") and ab.effect == ab.effect.strip(
                "\"'.; "), ab.text
    assert found / expected_total >= 0.98, f"{found}/{expected_total} abstractions accepted"
    assert wrong == []


@pytest.mark.parametrize(("line", "text"), [
    ("Using the lighter on the metal pot may be necessary to heat the water in the pot",
     "Using the lighter on the metal pot MAY BE NECESSARY to heat the water in the pot"),
    ("Turning on the stove does not contribute to boiling if the stove is broken",
     "Turning on the stove DOES NOT CONTRIBUTE to boiling if the stove is broken"),
    ("1. Moving seeds to the pot MAY BE NECESSARY for planting seeds.",
     "Moving seeds to the pot MAY BE NECESSARY to planting seeds"),
    ("- **Opening the door** SHOULD BE NECESSARY to *entering the kitchen*.",
     "Opening the door SHOULD BE NECESSARY to entering the kitchen"),
    ("If the stove is broken, using the lighter might be necessary in order to boil water",
     "using the lighter MAY BE NECESSARY to boil water if the stove is broken"),
    ("To boil water, heating the pot SHOULD BE NECESSARY.",
     "heating the pot SHOULD BE NECESSARY to boil water"),
    ("Waiting MAY BE NECESSARY so that the plant grows (step 30)",
     "Waiting MAY BE NECESSARY so that the plant grows"),
    ("Learning 2: eating the apple doesn\u2019t contribute to any task",
     "eating the apple DOES NOT CONTRIBUTE to any task"),
])
def test_paper_style_renderings_are_accepted_and_stored_canonically(line: str, text: str) -> None:
    ab = parse_line(line)
    assert ab is not None and ab.text == text
    assert parse_line(ab.text) == ab  # the canonical form reads back as itself


@pytest.mark.parametrize("line", [
    "Opening the door is necessary to leaving the room.",
    "Turning on the stove SHOULD NOT BE NECESSARY to boiling water",
    "Picking up the seed MAY CONTRIBUTE to planting it.",
    "X SHOULD BE NECESSARY to Y",
    "Does looking around MAY BE NECESSARY to finding the jar?",
    "Whether heating MAY BE NECESSARY to melting the ice is unclear.",
    "Opening the freezer DOES NOT CONTRIBUTE.",
])
def test_look_alikes_are_rejected(line: str) -> None:
    assert parse_line(line) is None
    assert len(parse_learnings(line).rejected) == 1


def test_json_answers_and_prose_around_a_list() -> None:
    answer = ('Sure! Here they are:\n```json\n{"learnings": ["opening the jar SHOULD BE '
              'NECESSARY to planting", {"learning": "looking at the sky DOES NOT CONTRIBUTE '
              'to planting"}, 3]}\n```\nHope this helps.')
    report = parse_learnings(answer)
    assert [a.text for a in report.accepted] == [
        "opening the jar SHOULD BE NECESSARY to planting",
        "looking at the sky DOES NOT CONTRIBUTE to planting",
    ]
    assert report.rejected == ["3"]  # the items count; the chatter around them is no item
    inline = parse_learnings("1. opening door SHOULD BE NECESSARY to leaving. 2. eating the "
                             "apple DOES NOT CONTRIBUTE to leaving.")
    assert len(inline.accepted) == 2 and inline.rejected == []
