import pytest

from clin.controller import TASK_COMPLETE, ProposalParseError, parse_proposal
from clin.errors import GroundingError
from clin.executor import best_choice, ground

VALID = [
    "open door to kitchen", "go to kitchen", "teleport to kitchen", "pick up seed jar",
    "move apple seed to flower pot 1", "focus on apple seed", "focus on flower pot 1",
    "look at seed jar", "activate sink",
]


@pytest.mark.parametrize(
    ("proposal", "expected", "method"),
    [
        ("open door to kitchen", "open door to kitchen", "exact"),
        ("Open the door to the kitchen.", "open door to kitchen", "normalized"),
        ("walk to the kitchen", "go to kitchen", "normalized"),
        ("take the seed jar", "pick up seed jar", "normalized"),
        ("turn on the sink", "activate sink", "normalized"),
        ("put apple seed in flower pot 1", "move apple seed to flower pot 1", "normalized"),
        ("pick up seeds jar", "pick up seed jar", "fuzzy"),
    ],
)
def test_paraphrases_are_grounded(proposal: str, expected: str, method: str) -> None:
    g = ground(proposal, VALID)
    assert (g.action, g.method) == (expected, method)


def test_weak_match_raises_with_candidates() -> None:
    with pytest.raises(GroundingError) as exc:
        ground("dance wildly with the bees", VALID)
    assert exc.value.candidates and all(not c.startswith("focus") for c in exc.value.candidates)


@pytest.mark.parametrize("proposal", ["on apple seed", "apple seed", "flower pot 1"])
def test_non_focus_proposal_never_becomes_a_focus(proposal: str) -> None:
    try:
        action = ground(proposal, VALID).action
    except GroundingError as exc:
        action = " ".join(exc.candidates)
    assert "focus" not in action


def test_focus_needs_a_near_exact_match() -> None:
    assert ground("focus on the apple seed", VALID).action == "focus on apple seed"
    with pytest.raises(GroundingError):
        ground("focus on seed", VALID)


def test_ambiguous_choice_picks_the_closest_option() -> None:
    choices = ["move apple seed (in seed jar) to flower pot 1",
               "move apple seed (in flower pot 2) to flower pot 1"]
    assert best_choice("move apple seed in flower pot 2 to flower pot 1", choices) == 1


def test_parse_json_text_format_and_bare_action() -> None:
    p = parse_proposal('{"used_learnings": [2, "3"], "rationale": "go", "action": "go to kitchen"}')
    assert (p.action, p.used_learnings) == ("go to kitchen", [2, 3])
    p = parse_proposal("I used learning id(s): 1, 4 $$$ need seeds ### pick up seed jar")
    assert (p.action, p.used_learnings, p.rationale) == ("pick up seed jar", [1, 4], "need seeds")
    assert parse_proposal("open door to kitchen").action == "open door to kitchen"
    assert parse_proposal('{"action": "task complete"}').action == TASK_COMPLETE


@pytest.mark.parametrize("bad", ["", "   ", "I think we should look for the seeds first.",
                                 '{"rationale": "no action here"}'])
def test_unusable_answers_raise_parse_error(bad: str) -> None:
    with pytest.raises(ProposalParseError):
        parse_proposal(bad)
