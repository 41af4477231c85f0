"""TinyWorld, the pure-Python TextEnv the fast agent-loop tests play: every task can be won,
a wrong focus fails, ambiguous names ask for a number, and it is deterministic."""

from __future__ import annotations

import pytest

from clin.envs.base import BadVariation, EnvError, TextEnv, UnknownTask
from clin.envs.tiny import AMBIGUOUS, UNKNOWN, TinyWorld

WINS = {
    ("find-living-thing", 3): [
        "open door to greenhouse", "go to greenhouse", "open door to outside", "go to outside",
        "focus on frog", "pick up frog", "go to greenhouse", "go to hallway",
        "move frog to green box"],
    ("find-plant", 2): [
        "open door to greenhouse", "go to greenhouse", "focus on lemon plant",
        "pick up flower pot 1", "go to hallway", "open door to kitchen", "go to kitchen",
        "move flower pot 1 to red box"],
    ("grow-plant", 0): [
        "open door to greenhouse", "go to greenhouse", "focus on apple seed", "0",
        "move apple seed to flower pot 2", "0", "move water to flower pot 2", "wait"],
    ("boil", 0): [
        "open door to kitchen", "go to kitchen", "open cupboard", "focus on water",
        "move metal pot to stove", "activate stove", "wait1", "wait1"],
}


def _play(env: TinyWorld, task: str, variation: int, actions: list[str]) -> list:
    out = [env.reset(task, variation)]
    for a in actions:
        assert a in out[-1].valid_actions or a.isdigit(), (a, out[-1].valid_actions)
        out.append(env.step(a))
    return out


def test_is_a_text_env_with_tasks_and_splits(tiny: TinyWorld) -> None:
    assert isinstance(tiny, TextEnv)
    names = [t.name for t in tiny.tasks()]
    assert names == ["find-living-thing", "find-plant", "grow-plant", "boil"]
    for t in tiny.tasks():
        splits = [tiny.split(t.name, w) for w in ("train", "dev", "test")]
        assert sorted(v for s in splits for v in s) == list(range(t.variations))
        assert all(splits)
    with pytest.raises(UnknownTask, match="Did you mean: boil"):
        tiny.reset("boill", 0)
    with pytest.raises(BadVariation, match=r"choose 0\.\.7"):
        tiny.check("boil", 8)
    with pytest.raises(EnvError, match="reset"):
        TinyWorld().step("look around")


@pytest.mark.parametrize(("task", "variation"), list(WINS))
def test_every_task_can_be_won_with_partial_scores(tiny: TinyWorld, task: str,
                                                   variation: int) -> None:
    obs = _play(tiny, task, variation, WINS[(task, variation)])
    scores = [o.score for o in obs]
    assert scores == sorted(scores) and 0 < len(set(scores) - {0, 100})  # partial steps
    assert [o.done for o in obs] == [False] * (len(obs) - 1) + [True]
    assert obs[-1].score == 100 and obs[-1].reward > 0
    assert sum(o.reward for o in obs) == 100
    assert [o.moves for o in obs] == list(range(len(obs)))
    with pytest.raises(EnvError, match="episode is over"):
        tiny.step("look around")


def test_wrong_focus_fails_the_task(tiny: TinyWorld) -> None:
    obs = _play(tiny, "find-living-thing", 0, ["focus on picture"])[-1]
    assert (obs.score, obs.done, obs.reward) == (-100, True, -100)


def test_ambiguous_name_asks_for_a_number(tiny: TinyWorld) -> None:
    tiny.reset("grow-plant", 5)  # starts in the greenhouse: a seed in the jar and the packet
    obs = tiny.step("focus on orange seed")
    assert obs.text.startswith(AMBIGUOUS)
    assert obs.choices == ["focus on orange seed (in seed jar, in greenhouse)",
                           "focus on orange seed (in seed packet, in greenhouse)"]
    obs = tiny.step("1")
    assert (obs.text, obs.choices, obs.score) == ("You focus on the orange seed.", [], 25)
    obs = tiny.step("move orange seed to flower pot 1")
    assert len(obs.choices) == 2
    obs = tiny.step("0")  # the jar's seed, not the focused one: no points
    assert obs.score == 25 and "seed jar. In the seed jar is: nothing" in obs.look
    assert tiny.step("1").text == UNKNOWN  # a number without a pending request
    obs = tiny.step("move orange seed to flower pot 2")
    assert obs.choices[1] == ("move orange seed (in seed packet, in greenhouse) to "
                              "flower pot 2 (in greenhouse)")
    assert tiny.step("1").score == 50


def test_doors_teleport_and_unknown_commands() -> None:
    env = TinyWorld()
    obs = env.reset("boil", 0)
    assert "teleport to kitchen" not in obs.valid_actions
    assert env.step("go to kitchen").text == "The door to the kitchen is closed."
    assert env.step("teleport to kitchen").text == UNKNOWN
    assert env.step("juggle the seeds").text == UNKNOWN
    assert env.step("open door to kitchen").text == "The door is now open."
    obs = env.step("go to kitchen")
    assert obs.look.startswith("This room is called the kitchen.")
    assert "A door to the hallway (that is open)" in obs.look
    fast = TinyWorld(teleport=True)
    obs = fast.reset("boil", 0)
    assert "teleport to outside" in obs.valid_actions
    assert fast.step("teleport to outside").look.startswith("This room is called the outside.")


def test_deterministic() -> None:
    actions = [*WINS[("grow-plant", 0)][:-2], "look around", "pick up water", "inventory"]
    a = [o.model_dump() for o in _play(TinyWorld(), "grow-plant", 0, actions)]
    b = [o.model_dump() for o in _play(TinyWorld(), "grow-plant", 0, actions)]
    assert a == b
