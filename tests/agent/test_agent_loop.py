"""Full trials with a scripted LLM: on TinyWorld (no Java) for the loop's own rules, and
one on the real ScienceWorld, grounding against its valid actions."""

from __future__ import annotations

import json

import pytest

from clin.agent import AgentSettings
from clin.llm import Message, ScriptedLLM
from clin.memory import Memory, Scope
from clin.trials.runner import AdaptConfig, run_adapt
from tests.conftest import proposal

REFLECTION = "\n".join([
    "opening the door to the kitchen SHOULD BE NECESSARY to finding the seeds",
    "looking around the kitchen MAY BE NECESSARY to finding the seeds",
    "The kitchen has a seed jar and a sink.",  # observation chatter: must be rejected
])


def _cfg(trials: int = 2, steps: int = 3, **kw) -> AdaptConfig:
    return AdaptConfig(task="grow-plant", variation=0, trials=trials,
                       settings=AgentSettings(max_steps=steps, **kw))


def test_memory_from_trial_1_conditions_trial_2(tiny, mem: Memory) -> None:
    seen: dict[str, str] = {}

    def trial2_first(messages: list[Message]) -> str:
        seen["system"] = messages[0].content
        return proposal("look around", used=[1])

    llm = ScriptedLLM({
        "controller": [
            proposal("open door to kitchen"),
            proposal("walk to the kitchen"),  # paraphrase of a valid move
            proposal("look around"),
            trial2_first,
            proposal("look around"),
            proposal("inventory"),
        ],
        "reflection": [
            REFLECTION,
            "opening the door to the kitchen SHOULD BE NECESSARY to finding the seeds",
        ],
    })
    summary = run_adapt(_cfg(), env=tiny, llm=llm, mem=mem)
    llm.assert_complete()
    assert llm.purposes == ["controller"] * 3 + ["reflection"] + ["controller"] * 3 + [
        "reflection"]

    assert [t.steps for t in summary.trials] == [3, 3]
    assert "opening the door to the kitchen SHOULD BE NECESSARY to finding the seeds" in seen[
        "system"]
    assert "[1]" in seen["system"]
    # trial 1 wrote 2 learnings and rejected the chatter line
    t1 = mem.db["trials"].get(summary.trials[0].trial_id)
    assert (t1["learnings_written"], t1["learnings_rejected"]) == (2, 1)
    assert mem.db.execute("SELECT count(*) FROM learnings WHERE text LIKE 'The kitchen%'"
                          ).fetchone()[0] == 0
    # the paraphrase was grounded to a real action
    step2 = next(mem.db.query("SELECT * FROM steps WHERE trial_id = ? AND idx = 2",
                              [summary.trials[0].trial_id]))
    assert step2["proposal"] == "walk to the kitchen"
    assert step2["action"] == "go to kitchen"
    assert step2["grounding"] == "normalized"
    # the learning cited as [1] in trial 2 is stored as its database id
    cited = next(mem.db.query("SELECT cited_learning_ids FROM steps WHERE trial_id = ? AND idx = 1",
                              [summary.trials[1].trial_id]))["cited_learning_ids"]
    first = mem.recall(mem_scope(mem))[0]
    assert json.loads(cited) == [first.id]
    # provenance: learnings carry the trial that produced them
    rows = list(mem.db.query("SELECT first_trial_id, last_trial_id, support FROM learnings "
                             "ORDER BY id"))
    assert rows[0] == {"first_trial_id": summary.trials[0].trial_id,
                       "last_trial_id": summary.trials[1].trial_id, "support": 2}
    assert mem.db["runs"].get(summary.run_id)["status"] == "finished"
    # tokens of every call are recorded, per trial
    tok = list(mem.db.query("SELECT prompt_tokens FROM v_trial_scores WHERE run_id = ?",
                            [summary.run_id]))
    assert all(r["prompt_tokens"] > 0 for r in tok)


def mem_scope(mem: Memory) -> Scope:
    return Scope(env="tiny", task="grow-plant", variation="0")


def test_reask_shows_related_candidates_then_grounds(tiny, mem: Memory) -> None:
    def reask(msgs: list[Message]) -> str:
        offered = [ln[2:] for ln in msgs[-1].content.splitlines() if ln.startswith("- ")]
        # candidates share the proposal's verb and objects, never unrelated actions
        assert offered and all("door" in c for c in offered), offered
        return proposal("open door to kitchen")

    llm = ScriptedLLM([
        proposal("open door to the moon"),  # the simulator's parser does not know it
        reask,
        "nothing useful",  # reflection with no valid line
    ])
    summary = run_adapt(_cfg(trials=1, steps=1), env=tiny, llm=llm, mem=mem)
    llm.assert_complete()
    step = next(mem.db.query("SELECT * FROM steps WHERE trial_id = ?",
                             [summary.trials[0].trial_id]))
    assert (step["action"], step["grounding"]) == ("open door to kitchen", "reask")
    purposes = [r["purpose"] for r in mem.db.query("SELECT purpose FROM llm_calls ORDER BY id")]
    assert purposes == ["controller", "reask", "reflection"]
    assert summary.trials[0].outcome.rejected == 1


def test_stops_on_task_complete_and_on_repeats(tiny, mem: Memory) -> None:
    llm = ScriptedLLM([proposal("look around"), proposal("TASK_COMPLETE"), "x"])
    s = run_adapt(_cfg(trials=1, steps=10), env=tiny, llm=llm, mem=mem)
    assert (s.trials[0].steps, s.trials[0].stop_reason) == (1, "task-complete")

    llm = ScriptedLLM([proposal("inventory")] * 5 + ["x"])
    s = run_adapt(_cfg(trials=1, steps=10), env=tiny, llm=llm, mem=mem)
    llm.assert_complete()
    assert (s.trials[0].steps, s.trials[0].stop_reason) == (5, "repeated-action")


def test_wrong_focus_ends_the_trial_as_failed(tiny, mem: Memory) -> None:
    llm = ScriptedLLM([proposal("focus on picture"), "x"])
    cfg = _cfg(trials=1, steps=5).model_copy(update={"task": "find-living-thing"})
    s = run_adapt(cfg, env=tiny, llm=llm, mem=mem)
    llm.assert_complete()
    t = s.trials[0]
    assert t.stop_reason == "failed" and t.score < 0 and not t.completed


def test_malformed_output_is_reasked_then_falls_back(tiny, mem: Memory) -> None:
    llm = ScriptedLLM(["", "I am not sure what to do.", "{broken json", "x"])
    s = run_adapt(_cfg(trials=1, steps=1), env=tiny, llm=llm, mem=mem)
    llm.assert_complete()
    step = next(mem.db.query("SELECT action, grounding FROM steps"))
    assert step == {"action": "look around", "grounding": "fallback"}
    assert s.trials[0].steps == 1


@pytest.mark.parametrize("n", [1])
def test_resume_runs_only_missing_trials(tiny, mem: Memory, n: int) -> None:
    llm = ScriptedLLM([proposal("look around"), "x"])
    cfg = _cfg(trials=2, steps=1)

    class Boom(Exception):
        pass

    def explode(_msgs):
        raise Boom

    llm = ScriptedLLM([proposal("look around"), "x", explode])
    with pytest.raises(Boom):
        run_adapt(cfg, env=tiny, llm=llm, mem=mem)
    statuses = [r["status"] for r in mem.db.query("SELECT status FROM trials ORDER BY id")]
    assert statuses == ["completed", "failed"]
    llm2 = ScriptedLLM([proposal("look around"), "x"])
    s = run_adapt(cfg, env=tiny, llm=llm2, mem=mem, resume=True)
    llm2.assert_complete()
    assert [t.idx for t in s.trials] == [2]
    rows = list(mem.db.query("SELECT idx, status FROM trials WHERE run_id = ? ORDER BY id",
                             [s.run_id]))
    assert [r["idx"] for r in rows if r["status"] == "completed"] == [1, 2]
    assert mem.db["runs"].get(s.run_id)["status"] == "finished"


def test_enum_offered_to_grammar_backends_is_bounded(tiny) -> None:
    from clin.agent import ENUM_LIMIT, enum_actions

    small = ["go to kitchen", "look around"]
    assert set(small) <= set(enum_actions(small))
    big = [f"move thing {i} to other thing {j}" for i in range(60) for j in range(30)]
    big += ["open door to kitchen", "focus on apple seed"]
    got = enum_actions(big, tiny.profile.always_valid)
    assert len(got) == ENUM_LIMIT
    assert {"open door to kitchen", "focus on apple seed", "look around"} <= set(got)


def test_ungroundable_proposal_is_sent_verbatim_never_swapped(tiny, mem: Memory) -> None:
    llm = ScriptedLLM([proposal("juggle the seeds")] * 3 + ["x"])
    run_adapt(_cfg(trials=1, steps=1), env=tiny, llm=llm, mem=mem)
    llm.assert_complete()
    step = next(mem.db.query("SELECT action, grounding, observation FROM steps"))
    assert (step["action"], step["grounding"]) == ("juggle the seeds", "verbatim")
    assert "No known action" in step["observation"]


def test_ambiguous_request_naming_no_option_clearly_is_put_to_the_model(tiny,
                                                                        mem: Memory) -> None:
    # two orange seeds (in the seed jar and in the seed packet): the proposal names both
    # equally, so the agent shows the model the options instead of guessing
    asked: list[str] = []

    def pick(msgs: list[Message]) -> str:
        asked.append(msgs[-1].content)
        return proposal("0")

    llm = ScriptedLLM({"controller": [proposal("focus on orange seed")], "choice": [pick],
                       "reflection": ["x"]})
    cfg = _cfg(trials=1, steps=1).model_copy(update={"variation": 5})  # starts by the seeds
    s = run_adapt(cfg, env=tiny, llm=llm, mem=mem)
    llm.assert_complete()
    assert "(in seed packet, in greenhouse)" in asked[0]
    step = next(mem.db.query("SELECT action, grounding, score FROM steps"))
    assert step == {"action": "focus on orange seed -> focus on orange seed "
                              "(in seed jar, in greenhouse)",
                    "grounding": "asked", "score": 25.0}
    assert s.trials[0].score == 25


@pytest.mark.scienceworld
def test_real_scienceworld_trial_grounds_and_learns(sw, mem: Memory) -> None:
    """The real simulator: a paraphrase grounds to one of its valid actions, the score and
    observations come back, and the reflection lands in memory."""
    llm = ScriptedLLM([
        proposal("open door to kitchen"),
        proposal("walk to the kitchen"),
        REFLECTION,
    ])
    summary = run_adapt(_cfg(trials=1, steps=2), env=sw, llm=llm, mem=mem)
    llm.assert_complete()
    steps = list(mem.db.query("SELECT action, grounding, observation FROM steps ORDER BY idx"))
    assert steps[0]["action"] == "open door to kitchen"
    assert (steps[1]["action"], steps[1]["grounding"]) in [
        ("go to kitchen", "normalized"), ("teleport to kitchen", "normalized")]
    assert "kitchen" in steps[1]["observation"]
    assert (summary.trials[0].outcome.added, summary.trials[0].outcome.rejected) == (2, 1)
    assert [x.text for x in mem.recall(Scope(env="scienceworld", task="grow-plant",
                                             variation="0"))][:1] == [
        "opening the door to the kitchen SHOULD BE NECESSARY to finding the seeds"]


@pytest.mark.scienceworld
def test_a_form_the_parser_accepts_is_sent_unchanged(sw, mem: Memory) -> None:
    # not in the valid-action list (the door is open), but ScienceWorld understands it
    llm = ScriptedLLM([proposal("open the door to the kitchen please"),
                       proposal("open door to kitchen"), "x"])
    run_adapt(_cfg(trials=1, steps=1), env=sw, llm=llm, mem=mem)
    step = next(mem.db.query("SELECT action, grounding FROM steps"))
    assert step["grounding"] in ("reask", "parser", "normalized")
    llm = ScriptedLLM([proposal("open door to kitchen"), proposal("go to kitchen"),
                       proposal("pick up thermometer"),
                       proposal("focus on thermometer in inventory"), "x"])
    cfg = _cfg(trials=1, steps=4).model_copy(
        update={"task": "measure-melting-point-known-substance"})
    s = run_adapt(cfg, env=sw, llm=llm, mem=mem)
    llm.assert_complete()
    rows = list(mem.db.query("SELECT action, grounding, observation FROM steps "
                             "WHERE trial_id = ? ORDER BY idx", [s.trials[0].trial_id]))
    assert (rows[-1]["action"], rows[-1]["grounding"]) == (
        "focus on thermometer in inventory", "parser")
    assert "You focus on the thermometer" in rows[-1]["observation"]
    assert s.trials[0].score > 0


@pytest.mark.scienceworld
def test_an_unknown_focus_is_reasked_with_focus_actions_only(sw, mem: Memory) -> None:
    seen: list[str] = []

    def reask(msgs: list[Message]) -> str:
        seen.extend(ln[2:] for ln in msgs[-1].content.splitlines() if ln.startswith("- "))
        return proposal("look around")

    llm = ScriptedLLM([proposal("focus on door to the moon"), reask, "x"])
    s = run_adapt(_cfg(trials=1, steps=1), env=sw, llm=llm, mem=mem)
    llm.assert_complete()
    assert seen and all(c.startswith("focus on") and "door" in c for c in seen), seen
    step = next(mem.db.query("SELECT action, grounding FROM steps"))
    assert (step["action"], step["grounding"]) == ("look around", "reask")
    assert s.trials[0].score >= 0  # the unknown focus did nothing
