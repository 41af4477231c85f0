"""The demo model's schema caps: they only ever tighten, and leave other schemas alone."""

from __future__ import annotations

import copy
import re

from clin import controller
from clin.llm.local import DEMO_CAPS, DEMO_ITEM_PATTERNS, compact_grammar, tighten
from clin.reflection import reflection_schema


def test_demo_caps_shorten_the_rationale_and_ids_only() -> None:
    schema = controller.proposal_schema(["look around", "open door"])
    before = copy.deepcopy(schema)
    tight = tighten(schema, DEMO_CAPS)
    props = tight["properties"]
    cap = DEMO_CAPS["rationale"]["maxLength"]
    assert props["rationale"]["maxLength"] == cap < schema["properties"]["rationale"]["maxLength"]
    assert props["used_learnings"]["maxItems"] == DEMO_CAPS["used_learnings"]["maxItems"]
    assert props["action"] == schema["properties"]["action"]
    assert schema == before  # the caller's copy intact


def test_caps_never_loosen_and_skip_unrelated_schemas() -> None:
    schema = {"type": "object", "properties": {"rationale": {"type": "string", "maxLength": 10}}}
    assert tighten(schema, DEMO_CAPS)["properties"]["rationale"]["maxLength"] == 10
    assert tighten(schema, {}) is schema


def test_demo_reflection_writes_at_most_two_learnings_of_the_same_form() -> None:
    full = reflection_schema()
    tight = tighten(full, DEMO_CAPS)["properties"]["learnings"]
    assert tight["maxItems"] == 2 < full["properties"]["learnings"]["maxItems"]
    assert tight["items"] == full["properties"]["learnings"]["items"]
    assert tight["minItems"] == full["properties"]["learnings"]["minItems"]


def test_grammar_is_compact_and_closed() -> None:
    grammar = compact_grammar(controller.proposal_schema(["look around"]))
    assert '"additionalProperties":false' in grammar.replace(" ", "")
    assert '"whitespace_flexible":false' in grammar.replace(" ", "")


def test_demo_learnings_are_letters_and_spaces_within_the_library_pattern() -> None:
    """The demo model's learning lines: no digits or commas (it filled them with
    "2000000000000" and lists), always a subset of what the library's schema accepts."""
    full = reflection_schema()
    items = tighten(full, DEMO_CAPS, DEMO_ITEM_PATTERNS)["properties"]["learnings"]["items"]
    demo, library = re.compile(items["pattern"]), re.compile(
        full["properties"]["learnings"]["items"]["pattern"])
    for line in ["go to kitchen MAY BE NECESSARY to grow a apple plant from seed",
                 "opening the door SHOULD BE NECESSARY to going outside"]:
        assert demo.match(line) and library.match(line)
    for line in ["the house 2000000 DOES NOT CONTRIBUTE to the kitchen",
                 "the kitchen, the bathroom DOES NOT CONTRIBUTE to the kitchen"]:
        assert library.match(line) and not demo.match(line)
    assert '"pattern"' in compact_grammar(tighten(full, DEMO_CAPS, DEMO_ITEM_PATTERNS))
