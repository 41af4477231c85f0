"""The controller prompt: the agent's own rationales, observations clipped by tokens, the
ScienceWorld hints from prompts/, a reusable prefix; and the output schemas as backends
receive them (generated from the pydantic models)."""

from __future__ import annotations

import json

import jsonschema
import pytest

from clin import controller
from clin.agent import AgentSettings
from clin.controller import HistoryItem, Proposal, build_messages, proposal_schema
from clin.envs.scienceworld import PROFILE as SW_PROFILE
from clin.llm import ScriptedLLM
from clin.memory import Memory, estimate_tokens
from clin.memory.reflect import reflection_schema
from clin.trials.runner import AdaptConfig, run_adapt
from tests.conftest import proposal


def _messages(history: list[HistoryItem]) -> list:
    return build_messages(task="boil water", memory_text="[1] a b SHOULD BE NECESSARY to c d",
                          history=history, step=len(history) + 1, score=0,
                          observation="ok", look="a kitchen", inventory="nothing",
                          profile=SW_PROFILE)


def _item(i: int, obs: str = "", why: str = "") -> HistoryItem:
    return HistoryItem(idx=i, action=f"look at thing {i}", observation=obs or f"thing {i}",
                       rationale=why or f"plan {i}: look at thing {i} then the stove")


def test_history_shows_rationales_and_clips_observations_by_tokens() -> None:
    long_obs = "In it, you see: " + ", ".join(f"object {n}" for n in range(200))
    user = _messages([_item(1, long_obs), _item(2)])[1].content
    assert "why: plan 1: look at thing 1 then the stove\n> look at thing 1\n" in user
    shown = user.split("> look at thing 1\n")[1].splitlines()[0]
    assert shown.endswith("...") and estimate_tokens(shown) <= controller.OBS_TOKENS + 1
    assert "object 30" in shown and len(shown) > 240  # past the old 240-character cut


def test_history_window_keeps_to_its_token_budget_and_the_newest_step() -> None:
    history = [_item(i, "x" * 2000, "y" * 2000) for i in range(1, 16)]
    window = controller.history_window(history)
    assert window[-1].idx == 15
    cost = sum(estimate_tokens(h.action) + estimate_tokens(h.observation)
               + estimate_tokens(h.rationale) + 6 for h in window)
    assert cost <= controller.HISTORY_TOKENS


def test_consecutive_prompts_share_system_and_history_prefix() -> None:
    history = [_item(i) for i in range(1, 12)]
    a, b = _messages(history[:9]), _messages(history[:10])
    assert a[0].content == b[0].content  # instructions, task and memory: reused whole
    head = a[1].content.split("\nStep ")[0]
    assert b[1].content.startswith(head)


def test_scienceworld_hints_come_from_the_prompt_files() -> None:
    system = _messages([])[0].content
    assert "a focus on a wrong object ends the task as failed" in system
    assert '"wait" (10 steps) or "wait1" (1 step)' in system
    assert '"mix OBJ": OBJ is the container' in system
    assert "your plan, at most 400 characters" in system


def test_proposal_schema_is_generated_from_the_model() -> None:
    schema = proposal_schema()
    assert list(schema["properties"]) == ["used_learnings", "rationale", "action"]
    assert schema["required"] == ["used_learnings", "rationale", "action"]
    assert schema["additionalProperties"] is False and "$ref" not in json.dumps(schema)
    jsonschema.Draft202012Validator.check_schema(schema)
    good = Proposal(action="look around", rationale="plan", used_learnings=[1]).model_dump()
    jsonschema.validate(good, schema)
    for bad in ({**good, "extra": 1}, {"used_learnings": [], "rationale": ""},
                {**good, "rationale": "r" * (controller.RATIONALE_CHARS + 1)}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)


def test_llama_cpp_takes_both_schemas() -> None:
    xllamacpp = pytest.importorskip("xllamacpp")
    for schema in (proposal_schema(), proposal_schema(["look around"]), reflection_schema()):
        assert xllamacpp.json_schema_to_grammar(json.dumps(schema)).strip()


def test_schema_enforcing_backend_receives_the_generated_schemas(tiny, mem: Memory) -> None:
    learning = "looking around MAY BE NECESSARY to finding the seeds"
    llm = ScriptedLLM([proposal("look around"), json.dumps({"learnings": [learning]})])
    llm.enforces_schema = True
    cfg = AdaptConfig(task="grow-plant", variation=0, trials=1,
                      settings=AgentSettings(max_steps=1))
    summary = run_adapt(cfg, env=tiny, llm=llm, mem=mem)
    llm.assert_complete()
    step_schema, reflect_schema = llm.schemas
    assert step_schema is not None and "look around" in step_schema["properties"]["action"]["enum"]
    jsonschema.validate({"used_learnings": [], "rationale": "", "action": "look around"},
                        step_schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"used_learnings": [], "rationale": "", "action": "fly away"},
                            step_schema)
    assert reflect_schema == reflection_schema()
    assert 'Answer in JSON: {"learnings"' in llm.calls[-1][0].content
    assert summary.trials[0].outcome.added == 1
