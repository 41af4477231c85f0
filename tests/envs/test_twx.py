"""TextWorldExpress through the same agent loop as ScienceWorld, on the real simulator (one
JVM for the session; its steps take milliseconds): the 8 games, seeds as variations by split,
scores 0..100, unknown commands, game parameters, a crash replayed, and ``clin run --env twx``
storing learnings under env ``textworld-express``."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from clin.agent import AgentSettings
from clin.cli import main
from clin.envs import EnvCrashed, EnvError, HasGoldPaths, HasSplits, TextEnv, make
from clin.envs.twx import GAMES, PROFILE, TextWorldExpress
from clin.executor import lexicon
from clin.llm import Message, ScriptedLLM
from clin.llm.base import current_purpose
from clin.memory import Memory
from clin.trials.runner import AdaptConfig, run_adapt
from tests.conftest import proposal
from tests.support.fake_openai import FakeOpenAI
from tests.support.rel_helpers import rows

LEARNING = "taking the coin SHOULD BE NECESSARY to finishing the task"


def test_made_by_name_and_alias_with_its_capabilities(twx) -> None:
    env = make("twx")
    try:
        assert env.name == "textworld-express" and env.profile is PROFILE
        assert isinstance(env, TextEnv) and isinstance(env, HasSplits)
        assert isinstance(env, HasGoldPaths)
    finally:
        env.close()
    infos = twx.tasks()
    assert [t.name for t in infos] == list(GAMES) and len(infos) == 8
    assert {t.variations for t in infos} == {3000}
    train, dev, test = (twx.split("coin", w) for w in ("train", "dev", "test"))
    assert (train[0], dev[0], test[0], test[-1]) == (0, 1000, 2000, 2999)
    assert twx._seed(2000) == ("test", 20000)


@pytest.mark.parametrize("game", list(GAMES))
def test_every_game_solved_by_its_gold_path_through_the_agent(twx, game: str,
                                                             tmp_path: Path) -> None:
    variation = twx.split(game, "test")[0]
    gold = iter(twx.gold_actions(game, variation))

    def answer(messages: list[Message]) -> str:  # a gold path may go on after the win (twc)
        if current_purpose() == "reflection":
            return LEARNING
        return proposal(next(gold))

    llm = ScriptedLLM([answer] * 100)
    cfg = AdaptConfig(task=game, variation=variation, trials=1,
                      settings=AgentSettings(max_steps=99))
    with Memory(tmp_path / "clin.db") as mem:
        result = run_adapt(cfg, env=twx, llm=llm, mem=mem).trials[0]
    assert (result.score, result.completed, result.stop_reason) == (100, True, "success")
    assert len(llm.calls) == result.steps + 1  # one proposal a step, then the reflection
    kinds = rows(tmp_path / "clin.db", "SELECT DISTINCT grounding FROM steps")
    assert set(kinds) <= {("exact",)}  # every gold action is valid as written: no re-ask
    assert rows(tmp_path / "clin.db", "SELECT DISTINCT env FROM learnings") == [
        ("textworld-express",)]


def test_scores_run_0_to_100_and_unknown_commands_do_nothing(twx) -> None:
    obs = twx.reset("coin", 2000)
    assert obs.score == 0 and "look around" in obs.valid_actions
    assert twx.task_description().startswith("Your task is to search the environment")
    bad = twx.step("fly to the moon")
    assert not bad.understood and bad.score == 0 and not bad.done
    assert twx.step("look around").understood
    gold = twx.gold_actions("coin", 2000)
    twx.reset("coin", 2000)
    for action in gold:
        obs = twx.step(action)
    assert (obs.score, obs.done) == (100, True)
    assert not PROFILE.failed(100, True) and PROFILE.failed(50, True)
    assert not PROFILE.failed(50, False)
    with pytest.raises(EnvError, match="episode is over"):
        twx.step("look around")


def test_the_lexicon_reads_the_games_commands_as_models_write_them(twx) -> None:
    lex = lexicon(PROFILE)
    valid = ["take cookbook", "put knife in counter", "move north", "open door to east",
             "examine fridge", "look around", "cook red potato in oven", "eat meal"]
    for said, meant in [("pick up the cookbook", "take cookbook"),
                        ("get cookbook", "take cookbook"),
                        ("place the knife on the counter", "put knife in counter"),
                        ("go north", "move north"), ("walk to the north", "move north"),
                        ("Open the door to the east.", "open door to east"),
                        ("look at the fridge", "examine fridge"), ("look", "look around"),
                        ("roast the red potato in the oven", "cook red potato in oven")]:
        hit = lex.match_valid(said, valid)
        assert hit is not None and hit.action == meant, said


@pytest.mark.textworld
def test_game_parameters_apply_to_the_games_that_have_them(tmp_path: Path, capsys) -> None:
    with TextWorldExpress(numLocations=3, includeDoors=0) as env:
        assert env.game_params["coin"] == {"numLocations": 3, "includeDoors": 0}
        assert env.game_params["arithmetic"] == {}
        env.reset("coin", 0)
        assert env._env.getGenerationProperties()["numLocations"] == 3
    with pytest.raises(EnvError, match="unknown TextWorldExpress game parameter 'rooms'"):
        TextWorldExpress(rooms=3)
    assert main(["run", "--env", "twx", "--task", "coin", "--env-opt", "numLocations=99",
                 "--db", str(tmp_path / "x.db")]) == 2
    err = capsys.readouterr().err.strip().splitlines()  # before any model is loaded
    assert len(err) == 1 and "Number of locations must be less than or equal to 11" in err[0]


@pytest.mark.textworld
def test_a_killed_jvm_is_restarted_and_the_game_replayed(tmp_path: Path) -> None:
    with TextWorldExpress() as env:
        gold = env.gold_actions("mapreader", 2001)
        env.reset("mapreader", 2001)
        for action in gold[:-1]:
            env.step(action)
        first = env.java_pid
        assert first is not None
        proc = env._env._gateway.java_process
        os.kill(first, signal.SIGKILL)
        proc.wait(timeout=10)
        obs = env.step(gold[-1])
        assert (obs.score, obs.done, env.restarts) == (100, True, 1)
        assert env.java_pid != first
    with TextWorldExpress(max_restarts=0) as env:
        env.reset("coin", 0)
        os.kill(env.java_pid, signal.SIGKILL)
        env._env._gateway.java_process.wait(timeout=10)
        with pytest.raises(EnvCrashed, match="TextWorldExpress crashed 1 times"):
            env.step("look around")


@pytest.mark.textworld
def test_clin_tasks_and_clin_run_with_env_twx(tmp_path: Path, capsys, allow_model_requests,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    assert main(["tasks", "--env", "twx"]) == 0
    listed = capsys.readouterr().out
    assert all(game in listed for game in GAMES)
    db = tmp_path / "clin.db"
    with FakeOpenAI() as srv:
        code = main(["run", "--env", "twx", "--task", "coin", "--trials", "2",
                     "--max-steps", "3", "--model", "openai:fake", "--base-url", srv.url,
                     "--db", str(db)])
    assert code == 0, capsys.readouterr().err
    with Memory(db) as mem:
        assert {r["env"] for r in mem.db.query("SELECT env FROM runs")} == {
            "textworld-express"}
        envs = {r["env"] for r in mem.db.query("SELECT env FROM learnings")}
    assert envs == {"textworld-express"}


@pytest.mark.textworld
def test_ceiling_and_perf_benchmarks_take_env_twx(capsys) -> None:
    from bench.__main__ import main as bench_main
    from bench.ceiling import run_ceiling

    episodes = run_ceiling(env="twx", tasks=["coin", "arithmetic"], split="test",
                           variations=2, simplification="easy")
    assert [(e.task, e.variation) for e in episodes] == [
        ("coin", 2000), ("coin", 2001), ("arithmetic", 2000), ("arithmetic", 2001)]
    assert all(e.score == e.raw_score == 100 and e.reasks == 0 for e in episodes)
    assert bench_main(["prompts", "--env", "twx", "--no-write"]) == 2
    assert "--env is for perf and ceiling" in capsys.readouterr().err


@pytest.mark.textworld
def test_gold_plans_phrased_as_a_model_writes_them_lose_nothing() -> None:
    from bench.ceiling import run_ceiling
    from bench.phrasing import natural

    assert natural(["take knife", "move north", "put knife in counter"], "textworld-express",
                   "x/1") != ["take knife", "move north", "put knife in counter"]
    episodes = run_ceiling(env="twx", tasks=["cookingworld", "twc"], split="test",
                           variations=2, simplification="easy", phrasing="natural")
    assert all(e.score == e.raw_score == 100 and e.reasks == 0 for e in episodes)
    assert sum(e.groundings["normalized"] for e in episodes) > 20


class CtrlCInPy4J:
    """Ctrl-C while py4j waits for the JVM's answer: once armed, the next command py4j sends
    raises KeyboardInterrupt inside its GatewayClient.send_command, whose own handler then
    fails (py4j 0.10.9.9: AttributeError 'shutdown_socket'), as on a real Ctrl-C."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from py4j.java_gateway import GatewayConnection

        self.armed, real = False, GatewayConnection.send_command

        def send_command(conn, command):
            if self.armed:
                self.armed = False
                raise KeyboardInterrupt
            return real(conn, command)

        monkeypatch.setattr(GatewayConnection, "send_command", send_command)


@pytest.mark.textworld
def test_ctrl_c_inside_a_simulator_call_is_a_keyboard_interrupt(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Every caller sees the KeyboardInterrupt py4j hides, and it is no crash to replay."""
    ctrl_c = CtrlCInPy4J(monkeypatch)
    with TextWorldExpress() as env:
        env.reset("coin", 0)
        ctrl_c.armed = True
        with pytest.raises(KeyboardInterrupt) as caught:
            env.step("look around")
        assert "shutdown_socket" in str(caught.value.__cause__)  # what py4j made of it
        assert env.restarts == 0
        assert env.step("look around").understood  # the simulator is still there


@pytest.mark.textworld
def test_ctrl_c_inside_a_simulator_call_leaves_an_eval_episode_interrupted(
        db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from clin.trials.eval import Parts, run_eval
    from clin.trials.protocols import EvalConfig
    from tests.trials.eval_helpers import answer

    ctrl_c = CtrlCInPy4J(monkeypatch)

    def then_ctrl_c(messages: list[Message]) -> str:  # during the step this answer asks for
        ctrl_c.armed = True
        return answer(messages)

    cfg = EvalConfig(protocol="adapt", tasks=["coin"], test_variations=1, trials=2,
                     max_steps=3, model="scripted", step_budget="fixed")
    with TextWorldExpress() as env, pytest.raises(KeyboardInterrupt):
        run_eval(db_path, cfg, parts=Parts(env=env, llm=ScriptedLLM([answer, then_ctrl_c])))
    assert rows(db_path, "SELECT status FROM evals") == [("interrupted",)]
    assert rows(db_path, "SELECT status FROM eval_episodes") == [("interrupted",)]
    assert rows(db_path, "SELECT status, error FROM runs") == [("interrupted", None)]
    assert rows(db_path, "SELECT idx, status FROM trials") == [(1, "interrupted")]
