import json
import re
from pathlib import Path

import pytest

from clin.memory import Abstraction, abstractions, parse_learnings, parse_line


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


@pytest.mark.parametrize(("answer", "accepted", "rejected"), [
    pytest.param(
        'Sure! Here they are:\n```json\n{"learnings": ["opening the jar SHOULD BE NECESSARY to '
        'planting", {"learning": "looking at the sky DOES NOT CONTRIBUTE to planting"}, 3]}\n'
        '```\nHope this helps.',
        ["opening the jar SHOULD BE NECESSARY to planting",
         "looking at the sky DOES NOT CONTRIBUTE to planting"],
        ["3"],  # the items count; the chatter around them is no item
        id="json-in-prose"),
    pytest.param(
        "1. opening door SHOULD BE NECESSARY to leaving. 2. eating the apple DOES NOT "
        "CONTRIBUTE to leaving.",
        ["opening door SHOULD BE NECESSARY to leaving",
         "eating the apple DOES NOT CONTRIBUTE to leaving"],
        [],
        id="numbered-inline"),
    pytest.param(
        "<learnings>\n<learning>opening the door SHOULD BE NECESSARY to going outside"
        "</learning>\n<learning id=\"2\">→ watering the pot MAY BE NECESSARY to growing "
        "the plant</learning></learnings>\n"
        "▸ looking around DOES NOT CONTRIBUTE to finding the seed\n"
        "✓ <b>focusing on the seed</b> SHOULD BE NECESSARY to growing the plant\n"
        "➤ reading the book MAY NOT CONTRIBUTE to growing the plant\n"
        "<learning>eating the apple DOES NOT CONTRIBUTE to growing the plant</learning>"
        "<learning>moving the pot MAY BE NECESSARY to watering it</learning>",
        ["opening the door SHOULD BE NECESSARY to going outside",
         "watering the pot MAY BE NECESSARY to growing the plant",
         "looking around DOES NOT CONTRIBUTE to finding the seed",
         "focusing on the seed SHOULD BE NECESSARY to growing the plant",
         "reading the book MAY NOT CONTRIBUTE to growing the plant",
         "eating the apple DOES NOT CONTRIBUTE to growing the plant",
         "moving the pot MAY BE NECESSARY to watering it"],
        [],
        id="xml-tags-and-bullet-glyphs-stripped-like-markdown"),
])
def test_answers_around_and_inside_a_list(answer: str, accepted: list[str],
                                          rejected: list[str]) -> None:
    report = parse_learnings(answer)
    assert [a.text for a in report.accepted] == accepted
    assert report.rejected == rejected
    assert sum(report.reasons.values()) == len(rejected)


def test_a_learning_tag_after_a_bullet_glyph_is_stripped() -> None:
    assert parse_line("→ <learning>opening the jar SHOULD BE NECESSARY to planting</learning>"
                      ).text == "opening the jar SHOULD BE NECESSARY to planting"


@pytest.mark.parametrize(("line", "reason"), [
    (("The kitchen is called the hallway, the hallway 120000000000000000000 DOES NOT "
     "CONTRIBUTE to the kitchen"), "a run of digits"),
    ("the kitchen DOES NOT CONTRIBUTE to the kitchen", "cause equals effect"),
    ("Opening the kitchen door SHOULD BE NECESSARY to opening kitchen door",
     "cause equals effect"),
    ("going to the hallway, the hallway SHOULD BE NECESSARY to winning", "a phrase repeated"),
    (("looking at the pot and the seed and looking at the pot and the seed MAY BE NECESSARY "
     "to growing"), "a phrase repeated"),
    ("opening the door MAY BE NECESSARY to " + " ".join(f"word{chr(97 + i)}" for i in range(26)),
     "a side longer than a sentence"),
])
def test_degenerate_learnings_are_refused_with_a_counted_reason(line: str, reason: str) -> None:
    assert parse_line(line) is None
    report = parse_learnings(f"{line}\n{line}\nnot a learning")
    assert report.accepted == []
    assert report.reasons == {reason: 2, "not one of the four forms": 1}


@pytest.mark.parametrize("line", [
    "moving the seed from flower pot 1 to flower pot 2 SHOULD BE NECESSARY to growing the plant",
    "waiting 10 steps MAY BE NECESSARY to boiling water at 100 degrees",
    "heating the water SHOULD BE NECESSARY to boiling the water",
    "opening the door to the kitchen SHOULD BE NECESSARY to finding the seeds in the kitchen",
])
def test_sound_learnings_near_the_degenerate_rules_are_kept(line: str) -> None:
    assert parse_line(line) is not None


def test_add_learning_says_why_a_degenerate_one_is_refused(tmp_path: Path) -> None:
    from clin.memory import Memory, NotALearning, Scope

    with Memory(tmp_path / "m.db") as mem, pytest.raises(NotALearning, match="cause equals"):
        mem.add_learning(Scope(env="e", task="t"), "the pot SHOULD BE NECESSARY to the pot")


# ------------------------------------------------------------- the four forms, defined once
ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("clin", "memory", "envs", "prompts", "trials", "cli", "viewer")


def test_every_form_parses_into_its_own_relation_and_confidence() -> None:
    from clin.memory.abstractions import FORMS

    assert len({(f.relation, f.confidence) for f in FORMS}) == len(FORMS) == 4
    for form in FORMS:
        ab = parse_line(f"opening the door {form.verb.lower()} to going outside")
        assert ab is not None and (ab.relation, ab.confidence) == (form.relation, form.confidence)
        assert ab.text == f"opening the door {form.verb} to going outside"


def test_the_forms_are_spelled_out_only_in_their_definition() -> None:
    """Prompts, schema and messages take the forms from ``abstractions.FORMS``; a source file
    that lists all four verbs again has copied the definition."""
    from clin.memory.abstractions import VERBS

    copies = [str(p.relative_to(ROOT)) for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*"))
              if p.suffix in (".py", ".j2") and all(v in p.read_text() for v in VERBS)]
    assert copies == ["memory/clin/memory/abstractions.py"]


def test_prompts_schema_and_docs_list_exactly_the_defined_forms() -> None:
    from clin.memory.abstractions import FORMS, FORMS_PATTERN, VERBS
    from clin.memory.reflect import ReflectionInput, build_messages, reflection_schema
    from clin.trials.meta import MetaSource
    from clin.trials.meta import build_messages as meta_messages

    listed = "\n".join(f"X {v} to Y" for v in VERBS)
    assert listed in build_messages(ReflectionInput())[0]["content"]
    for mode in ("gen-env", "gen-task"):
        source = MetaSource(episode_id=1, run_id=1, trial_id=1, task="t", variation=0, score=0,
                            learnings=[])
        assert listed in meta_messages(mode, "t", [source], structured=False)[0].content
    assert FORMS_PATTERN in reflection_schema()["properties"]["learnings"]["items"]["pattern"]
    rows = [(m[1], m[2], m[3]) for m in re.finditer(
        r"^\| `X ([A-Z ]+) to Y` \| [^|]+ \| ([a-z-]+) \| ([a-z]+) \|$",
        (ROOT / "docs" / "memory-library.md").read_text(), re.MULTILINE)]
    assert rows == [(f.verb, f.relation, f.confidence) for f in FORMS]
    doc = [(m[1], m[2], m[3]) for m in re.finditer(
        r"^ {4}X ([A-Z ]+) to Y +relation=(\S+) +confidence=(\S+)$",
        str(abstractions.__doc__), re.MULTILINE)]
    assert doc == rows
