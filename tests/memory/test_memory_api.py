"""The library API for agents outside CLIN: record_trial, reflect, recall, render."""

from __future__ import annotations

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage

from clin.memory import Memory, ReflectionError, Scope, StepRecord
from clin.memory.record import TraceError
from clin.memory.reflect import ReflectionInput, TraceStep, as_text, build_messages, text_of

SCOPE = Scope(namespace="lib", agent="a", env="kitchen", task="make tea", variation="1")
TRACE = [("boil water", "The kettle whistles."), ("add sugar", "Nothing happens.")]
BOIL = "boiling water SHOULD BE NECESSARY to making tea"
SUGAR = "adding sugar DOES NOT CONTRIBUTE to making tea"


class Script:
    """A callable LLM that answers from a list, records prompts, and fails when over-asked."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.prompts: list[str] = []

    def __call__(self, prompt: str) -> str:
        if len(self.prompts) >= len(self.answers):
            raise AssertionError(f"unexpected LLM call {len(self.prompts) + 1}")
        self.prompts.append(prompt)
        return self.answers[len(self.prompts) - 1]


def test_record_trial_stores_run_trial_and_steps_atomically(mem: Memory) -> None:
    t1 = mem.record_trial(SCOPE, TRACE, 40)
    t2 = mem.record_trial(SCOPE, [{"action": "boil water", "reward": 50.0},
                                  StepRecord(idx=9, action="pour", observation="brown")], 90,
                          completed=True)
    rows = list(mem.db.query("SELECT * FROM v_trial_scores ORDER BY trial_id"))
    assert [(r["trial_id"], r["trial"], r["score"], r["steps"]) for r in rows] == [
        (t1, 1, 40.0, 2), (t2, 2, 90.0, 2)]
    assert rows[0]["run_id"] == rows[1]["run_id"] and rows[1]["completed"] == 1
    steps = list(mem.db.query("SELECT idx, action, reward FROM steps WHERE trial_id = ?", [t2]))
    assert steps == [{"idx": 1, "action": "boil water", "reward": 50.0},
                     {"idx": 2, "action": "pour", "reward": None}]


def test_record_trial_into_an_explicit_run(mem: Memory) -> None:
    run_id = mem.start_run(scope=SCOPE, protocol="mine")
    tid = mem.record_trial(SCOPE, TRACE, 10, run_id=run_id)
    assert mem.db["trials"].get(tid)["run_id"] == run_id
    with pytest.raises(ValueError, match="run 999 does not exist"):
        mem.record_trial(SCOPE, TRACE, 10, run_id=999)


@pytest.mark.parametrize("bad", [["just a string"], [("a", "b", "c")], [{"observation": "x"}]])
def test_record_trial_refuses_a_bad_step_and_writes_nothing(mem: Memory, bad: list) -> None:
    with pytest.raises(TraceError, match="trace step 2"):
        mem.record_trial(SCOPE, [("ok", "fine"), *bad], 10)
    assert mem.db["trials"].count == 0 and mem.db["steps"].count == 0


def test_reflect_with_a_callable_merges_learnings_and_logs_the_call(mem: Memory) -> None:
    tid = mem.record_trial(SCOPE, TRACE, 100)
    llm = Script(f"1. {BOIL}\n- {SUGAR}\nSure, here you go!")
    out = mem.reflect(SCOPE, llm=llm, goal="make tea")
    assert (out.added, out.rejected) == (2, 1)
    prompt = llm.prompts[0]
    assert "TASK: make tea" in prompt and "1. > boil water -> The kettle whistles." in prompt
    assert "Final score: 100 / 100." in prompt
    assert [x.text for x in mem.recall(SCOPE)] == [BOIL, SUGAR]
    trial = mem.db["trials"].get(tid)
    assert (trial["learnings_written"], trial["learnings_rejected"]) == (2, 1)
    call = next(mem.db.query("SELECT * FROM llm_calls"))
    assert call["purpose"] == "reflection" and call["trial_id"] == tid and BOIL in call["response"]


def test_second_reflection_sees_earlier_learnings_and_dynamics_apply(mem: Memory) -> None:
    llm = Script(BOIL.replace("SHOULD", "MAY"), BOIL.replace("SHOULD", "MAY"),
                 BOIL.replace("SHOULD", "MAY") + "\n" + SUGAR)
    for score in (80, 90, 70):
        mem.record_trial(SCOPE, TRACE, score)
        out = mem.reflect(SCOPE, llm=llm)
    assert "CURRENT LEARNINGS" in llm.prompts[1]
    assert "\nboiling water MAY BE NECESSARY to making tea (support 1" in llm.prompts[1]
    assert out.promoted == 1  # third support with mean score >= 50: MAY -> SHOULD
    first = mem.recall(SCOPE, "boil")[0]
    assert (first.text, first.support, first.mean_score) == (BOIL, 3, 80.0)


def test_reflect_with_a_langchain_chat_model(mem: Memory) -> None:
    mem.record_trial(SCOPE, TRACE, 60)
    model = GenericFakeChatModel(messages=iter([AIMessage(content=BOIL)]))
    assert mem.reflect(SCOPE, llm=model).added == 1
    assert mem.recall(SCOPE)[0].text == BOIL


def test_reflect_on_an_explicit_trial(mem: Memory) -> None:
    first = mem.record_trial(SCOPE, [("boil water", "hot")], 10)
    mem.record_trial(SCOPE, [("add sugar", "sweet")], 20)
    llm = Script(BOIL)
    mem.reflect(SCOPE, llm=llm, trial_id=first)
    assert "boil water -> hot" in llm.prompts[0] and "add sugar" not in llm.prompts[0]
    assert mem.db["learnings"].get(1)["first_trial_id"] == first


def test_an_answer_without_learnings_is_an_error_and_changes_nothing(mem: Memory) -> None:
    mem.record_trial(SCOPE, TRACE, 50)
    mem.reflect(SCOPE, llm=Script(BOIL))
    mem.record_trial(SCOPE, TRACE, 50)
    with pytest.raises(ReflectionError, match="none of the four causal forms"):
        mem.reflect(SCOPE, llm=Script("I think the agent did fine."))
    assert [x.text for x in mem.recall(SCOPE)] == [BOIL]  # not demoted by a failed reflection
    assert mem.db["llm_calls"].count == 2


def test_llm_failures_become_reflection_errors(mem: Memory) -> None:
    mem.record_trial(SCOPE, TRACE, 50)

    def broken(prompt: str) -> str:
        raise ConnectionError("server down")

    with pytest.raises(ReflectionError, match="ConnectionError: server down") as info:
        mem.reflect(SCOPE, llm=broken)
    assert isinstance(info.value.__cause__, ConnectionError)
    assert next(mem.db.query("SELECT error FROM llm_calls"))["error"].endswith("server down")
    with pytest.raises(TypeError, match="chat model or a callable"):
        mem.reflect(SCOPE, llm=42)


def test_a_trial_is_reflected_on_once(mem: Memory) -> None:
    tid = mem.record_trial(SCOPE, TRACE, 90)
    mem.reflect(SCOPE, llm=Script(BOIL))
    with pytest.raises(ReflectionError, match=f"trial {tid} was already reflected on"):
        mem.reflect(SCOPE, llm=Script(BOIL))
    assert mem.recall(SCOPE)[0].support == 1


def test_reflect_needs_a_trial_of_that_scope(mem: Memory) -> None:
    with pytest.raises(ReflectionError, match="call record_trial first"):
        mem.reflect(SCOPE, llm=Script())
    other = mem.record_trial(SCOPE.model_copy(update={"variation": "2"}), TRACE, 50)
    with pytest.raises(ReflectionError, match=f"trial {other} does not exist"):
        mem.reflect(SCOPE, llm=Script(), trial_id=other)


def test_prompt_keeps_every_action_of_a_long_trace_within_budget() -> None:
    steps = [TraceStep(idx=i, action=f"action {i}", observation=f"{i} " + "x" * 400)
             for i in range(1, 200)]
    prompt = as_text(build_messages(ReflectionInput(steps=steps, score=5), budget_tokens=2000))
    assert all(f"{i}. > action {i}" in prompt for i in range(1, 200))
    assert "shortened" in prompt and len(prompt) < 4 * 2600


def test_second_reflection_sees_the_first_trials_score_and_learnings(mem: Memory) -> None:
    mem.record_trial(SCOPE, TRACE, 40)
    mem.reflect(SCOPE, llm=Script(BOIL))
    mem.record_trial(SCOPE, TRACE, 90)
    llm = Script(SUGAR)
    mem.reflect(SCOPE, llm=llm)
    assert "Trial 1: final score 40 / 100." in llm.prompts[0]
    assert f"  {BOIL}" in llm.prompts[0] and "(support 1, mean score 40)" in llm.prompts[0]


def test_text_of_accepts_strings_messages_and_content_blocks() -> None:
    assert text_of("a") == "a"
    assert text_of(AIMessage(content=[{"type": "text", "text": "x"}, "y"])) == "xy"
    with pytest.raises(ReflectionError):
        text_of(3)


def test_render_method_budgets_the_recalled_learnings(mem: Memory) -> None:
    mem.record_trial(SCOPE, TRACE, 50)
    mem.reflect(SCOPE, llm=Script(f"{BOIL}\n{SUGAR}"))
    shown = mem.render(SCOPE, "sugar")
    assert shown.text.splitlines()[0] == f"[1] {SUGAR}" and len(shown.ids) == 2
    assert len(mem.render(SCOPE, budget_tokens=15).ids) == 1
