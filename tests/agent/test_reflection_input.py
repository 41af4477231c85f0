"""What reflection is shown: the whole trial compressed (not cut at the front), the earlier
trials' scores and learnings, the memory with support; and the answer's schema."""

from __future__ import annotations

import json
import re

import jsonschema
import pytest

from clin.agent import AgentSettings
from clin.envs.scienceworld import PROFILE as SW_PROFILE
from clin.llm import Message, ScriptedLLM
from clin.llm.base import current_purpose
from clin.memory import Memory
from clin.memory.reflect import (
    ReflectionAnswer,
    ReflectionInput,
    TraceStep,
    as_text,
    build_messages,
    compress_trace,
    reflection_schema,
)
from clin.trials.runner import AdaptConfig, run_adapt
from tests.conftest import proposal

LEARNING = "opening the door to the kitchen SHOULD BE NECESSARY to finding the seeds"
WALK = ["look around", "open door to kitchen", "go to kitchen", "look around", "inventory",
        "look at table", "open fridge", "look at fridge", "go to hallway", "look around",
        "open door to greenhouse", "go to greenhouse", "look around", "look at flower pot 1",
        "wait1", "go to hallway", "look at picture", "look at coat rack"]


class Walker:
    """Scripted answers: proposals walking the house (a re-ask gets "look around"), and for a
    reflection prompt one learning, keeping the prompt."""

    def __init__(self) -> None:
        self.n = 0
        self.prompts: list[str] = []

    def __call__(self, messages: list[Message]) -> str:
        if current_purpose() == "reflection":
            self.prompts.append("\n\n".join(m.content for m in messages))
            return LEARNING
        if len(messages) > 2:
            return proposal("look around")
        self.n += 1
        return proposal(WALK[(self.n - 1) % len(WALK)])


def test_hundred_step_trial_reflection_sees_first_room_every_action_and_past_scores(
    tiny, mem: Memory
) -> None:
    first_look = tiny.reset("grow-plant", 0).look
    walker = Walker()
    llm = ScriptedLLM([walker] * 400)
    cfg = AdaptConfig(task="grow-plant", variation=0, trials=1,
                      settings=AgentSettings(max_steps=100))
    summary = run_adapt(cfg, env=tiny, llm=llm, mem=mem)
    assert summary.trials[0].steps == 100
    summary2 = run_adapt(cfg.model_copy(update={"settings": AgentSettings(max_steps=3)}),
                         env=tiny, llm=llm, mem=mem)
    prompts = walker.prompts
    assert len(prompts) == 2
    long_prompt = prompts[0]
    # the first room's contents, in full
    contents = first_look.split("In it, you see:")[1].split("You also see:")[0]
    for thing in [t.strip() for t in contents.splitlines() if t.strip()]:
        assert thing in long_prompt, thing
    # every action, in order, each step accounted for
    steps = list(mem.db.query("SELECT idx, action FROM steps WHERE trial_id = ? ORDER BY idx",
                              [summary.trials[0].trial_id]))
    assert len(steps) == 100
    covered: set[int] = set()
    for m in re.finditer(r"^(\d+)(?:-(\d+))?\. > (.+?)(?: \(x\d+\))?(?: -> |$| \[)", long_prompt,
                         re.MULTILINE):
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        covered.update(range(lo, hi + 1))
        assert all(steps[i - 1]["action"] == m.group(3) for i in range(lo, hi + 1))
    assert covered == set(range(1, 101))
    # the second trial's reflection sees the first trial's score and what it learned
    short_prompt = prompts[1]
    score = summary.trials[0].score
    assert f"Trial 1: final score {score:g} / 100." in short_prompt
    assert f"  {LEARNING}" in short_prompt and "(support 1" in short_prompt
    assert summary2.trials[0].steps == 3


def test_compression_keeps_actions_and_score_changes_and_shortens_repeats() -> None:
    kitchen = "This room is called the kitchen. In it, you see: a fridge, a stove, a sink."
    steps = [TraceStep(idx=1, action="look around", observation=kitchen)]
    steps += [TraceStep(idx=i, action="wait1", observation="You decide to wait for 1 iterations.")
              for i in range(2, 40)]
    steps += [TraceStep(idx=40, action="open fridge", observation="The fridge is now open.",
                        reward=8, score=8),
              TraceStep(idx=41, action="look in fridge",
                        observation="Inside the fridge is: a carton of milk, an orange. " * 3),
              TraceStep(idx=42, action="look around", observation=kitchen)]
    steps += [TraceStep(idx=i, action=f"look at thing {i}", observation=f"{i} " + "x " * 300)
              for i in range(43, 150)]
    rooms, lines, shortened = compress_trace(steps, budget_tokens=2500,
                                             room_pattern=SW_PROFILE.room_pattern)
    assert rooms == [kitchen] and shortened
    text = "\n".join(lines)
    assert "2-39. > wait1 (x38)" in text
    assert "40. > open fridge -> The fridge is now open. [score +8 -> 8]" in text
    assert "41. > look in fridge -> Inside the fridge is: a carton of milk" in text
    assert "42. > look around -> (the kitchen: see ROOMS SEEN)" in text
    assert all(f"{i}. > look at thing {i}" in text for i in range(43, 150))
    assert sum(len(x) for x in [*rooms, *lines]) // 4 <= 2500


def test_prompt_lists_earlier_trials_oldest_first_with_scores() -> None:
    inp = ReflectionInput.model_validate({
        "goal": "boil water", "score": 30, "outcome": "incomplete", "trial": 4,
        "steps": [{"idx": 1, "action": "look around", "observation": "ok"}],
        "past": [{"idx": 2, "score": 100, "learnings": ["a b SHOULD BE NECESSARY to c d"]},
                 {"idx": 3, "score": -100, "learnings": []}],
        "memory": [{"text": "a b SHOULD BE NECESSARY to c d", "support": 2, "mean_score": 50},
                   {"text": "e f MAY BE NECESSARY to g h", "origin": "task"}],
    })
    text = as_text(build_messages(inp))
    assert "\nFrom other variations of this task (they may not hold in this one; keep, fix or " \
           "drop them here):\ne f MAY BE NECESSARY to g h (support 1)\n" in text
    assert text.index("Trial 2: final score 100 / 100.") < text.index(
        "Trial 3: final score -100 / 100. No learnings.")
    assert "a b SHOULD BE NECESSARY to c d (support 2, mean score 50)" in text
    assert "ATTEMPT 4 (1 steps):" in text and "Final score: 30 / 100 (incomplete)." in text


def test_reflection_schema_is_generated_and_accepts_only_the_four_forms() -> None:
    schema = reflection_schema()
    assert schema == ReflectionAnswer.model_json_schema()
    assert "$ref" not in json.dumps(schema) and schema["additionalProperties"] is False
    jsonschema.Draft202012Validator.check_schema(schema)
    ok = {"learnings": ["Opening the jar SHOULD BE NECESSARY to planting a seed",
                        "waiting MAY NOT CONTRIBUTE to boiling water if the stove is off"]}
    jsonschema.validate(ok, schema)
    for bad in ({"learnings": []}, {"learnings": ["the kitchen has a sink"]},
                {"learnings": ["x"], "extra": 1}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)


def test_the_prompt_shows_an_example_learning_from_the_attempt() -> None:
    """The first action that raised the score, as a learning about the goal: small models
    copy the shape of what they are shown."""
    from clin.memory.reflect import example_learning

    steps = [TraceStep(idx=1, action="look around", score=0),
             TraceStep(idx=2, action="go to kitchen", score=2),
             TraceStep(idx=3, action="open fridge", score=5)]
    inp = ReflectionInput(goal="Your task is to grow a apple plant from seed. Seeds can be "
                          "found in the kitchen.", steps=steps, score=5)
    example = "go to kitchen MAY BE NECESSARY to grow a apple plant from seed"
    assert example_learning(inp) == example
    assert example in as_text(build_messages(inp))
    assert f'{{"learnings": ["{example}"]}}' in as_text(build_messages(inp, structured=True))
    flat = inp.model_copy(update={"steps": [s.model_copy(update={"score": 0}) for s in steps]})
    assert example_learning(flat) is None
    assert "For example" not in as_text(build_messages(flat))
