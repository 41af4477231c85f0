from clin.memory import parse_learnings, parse_line


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
