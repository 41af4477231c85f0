import pytest

from clin.controller import TASK_COMPLETE, ProposalParseError, parse_proposal
from clin.envs.scienceworld import PROFILE
from clin.errors import GroundingError
from clin.executor import lexicon

SW = lexicon(PROFILE)
candidates, choose_option, ground, match_valid = (SW.candidates, SW.choose_option, SW.ground,
                                                  SW.match_valid)

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


def test_weak_match_raises_with_related_candidates_only() -> None:
    with pytest.raises(GroundingError) as exc:
        ground("dance wildly with the bees", VALID)
    assert exc.value.candidates == []  # nothing shares its verb or objects: no noise
    with pytest.raises(GroundingError) as exc:
        ground("pick up the bees", VALID)
    assert exc.value.candidates == ["pick up seed jar"]  # the verb, for an unknown object
    with pytest.raises(GroundingError) as exc:
        ground("eat the seed jar", VALID)
    assert exc.value.candidates and all(not c.startswith("focus") and "seed" in c
                                        for c in exc.value.candidates)


@pytest.mark.parametrize("proposal", ["on apple seed", "apple seed", "flower pot 1"])
def test_non_focus_proposal_never_becomes_a_focus(proposal: str) -> None:
    try:
        action = ground(proposal, VALID).action
    except GroundingError as exc:
        action = " ".join(exc.candidates)
    assert "focus" not in action


def test_focus_is_never_fuzzy_and_reasks_only_focus_on_the_same_object() -> None:
    assert ground("focus on the apple seed", VALID).action == "focus on apple seed"
    with pytest.raises(GroundingError) as exc:
        ground("focus on apple seeds", VALID)  # close, but a focus object is never changed
    assert exc.value.candidates == ["focus on apple seed"]
    with pytest.raises(GroundingError) as exc:
        ground("focus on flower pot 2", VALID)
    assert exc.value.candidates == ["focus on flower pot 1"]
    with pytest.raises(GroundingError) as exc:
        ground("focus on the unicorn", VALID)
    assert exc.value.candidates == []  # never a focus on another object


def test_fuzzy_keeps_the_verb() -> None:
    # "pick up seed jar" is close in spelling to "look at seed jar" but not the same command
    with pytest.raises(GroundingError) as exc:
        ground("look at seeds jars", ["pick up seed jar", "pick up sewer"])
    assert exc.value.candidates == []


def test_match_valid_needs_no_fuzzy_matching() -> None:
    assert match_valid("open door to kitchen", VALID).method == "exact"
    assert match_valid("Open the door to the kitchen.", VALID).method == "normalized"
    assert match_valid("look around", []).method == "exact"
    assert match_valid("pick up seeds jar", VALID) is None


def test_reask_candidates_share_the_verb_and_objects() -> None:
    valid = [*VALID, "pick up sewer", "move soil in flower pot 3 to sewer",
             "move apple seed to flower pot 3", "move seed jar to flower pot 3"]
    got = candidates("move apple seed in seed jar to flower pot 3", valid)
    assert got and all(c.startswith("move ") for c in got)
    assert got[0] == "move apple seed to flower pot 3"
    assert "pick up sewer" not in candidates("pick up seed jar thing", valid)


def test_ambiguous_choice_picks_the_option_naming_the_same_objects() -> None:
    choices = ["move apple seed (in seed jar) to flower pot 1",
               "move apple seed (in flower pot 2) to flower pot 1"]
    assert choose_option("move apple seed in flower pot 2 to flower pot 1", choices) == 1
    same = ["move apple seed (in seed jar, in inventory) to flower pot 3 (in greenhouse)"] * 3
    assert choose_option("move apple seed in seed jar to flower pot 3", same) == 0


def test_ambiguous_choice_never_guesses() -> None:
    apples = ["focus on apple (in apple tree, in flower pot 3, in greenhouse)",
              "focus on apple (in apple tree, in flower pot 1, in greenhouse)"]
    assert choose_option("focus on red apple in apple tree", apples) is None
    assert choose_option("focus on apple in flower pot 1", apples) == 1
    assert choose_option("focus on banana", apples) is None
    assert choose_option("pick up apple", apples) is None  # not the same command


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


@pytest.mark.parametrize(("said", "meant"), [
    ("place the apple seed in the flower pot 1", "move apple seed to flower pot 1"),
    ("put the seed jar into the flower pot 1", "move seed jar to flower pot 1"),
    ("get the seed jar", "pick up seed jar"),
    ("turn on the sink", "activate sink"),
    ("walk to the kitchen", "go to kitchen"),
    ("put down the seed jar", "put down seed jar"),
])
def test_scienceworld_verbs_as_models_write_them(said: str, meant: str) -> None:
    valid = [*VALID, "move seed jar to flower pot 1", "activate sink", "put down seed jar"]
    assert SW.normalize(said) == meant
    hit = match_valid(said, valid)
    assert hit is not None and hit.action == meant
