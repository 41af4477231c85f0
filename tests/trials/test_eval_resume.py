"""An interrupted eval resumes where it stopped: finished trials are never re-run, the trial
in flight is re-run under the same run, and the CLI refuses a resume with nothing to resume."""

from __future__ import annotations

from pathlib import Path

import pytest

from clin.cli import main
from clin.envs import EnvCrashed
from clin.envs.tiny import TinyWorld
from clin.memory import Memory
from clin.trials.eval import Parts, run_eval
from clin.trials.protocols import EvalConfig
from tests.trials.eval_helpers import interrupt_after, scripted

PER_TRIAL = 3  # 2 controller calls + 1 reflection


def test_resume_does_not_redo_finished_trials(tiny, db_path: Path) -> None:
    cfg = EvalConfig(protocol="adapt", tasks=["find-living-thing"], test_variations=2,
                     trials=2, max_steps=2, model="scripted",
                     step_budget="fixed")
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C during episode 1, trial 2, step 1
        run_eval(db_path, cfg, parts=Parts(env=tiny, llm=interrupt_after(PER_TRIAL)))
    with Memory(db_path) as mem:
        assert mem.db.execute("SELECT status FROM evals").fetchone()[0] == "interrupted"
        before = list(mem.db.query("SELECT id, run_id, idx, status FROM trials ORDER BY id"))
        assert [(t["idx"], t["status"]) for t in before] == [(1, "completed"),
                                                               (2, "interrupted")]
        assert mem.db.execute("SELECT count(*) FROM trials WHERE status = 'running'"
                              ).fetchone()[0] == 0

    llm = scripted(PER_TRIAL * 3)  # exactly: ep 1 trial 2, ep 2 trials 1 and 2
    summary = run_eval(db_path, None, resume=True, parts=Parts(env=tiny, llm=llm))
    llm.assert_complete()
    assert (summary.status, summary.trials_done, summary.ran_trials) == ("finished", 4, 3)
    with Memory(db_path) as mem:
        done = list(mem.db.query(
            "SELECT trial_id, run_id, trial FROM v_eval_trials ORDER BY episode_id, trial"))
        assert len(done) == 4
        assert done[0]["trial_id"] == before[0]["id"]  # the finished trial was kept, not redone
        assert done[1]["run_id"] == before[0]["run_id"]  # same episode run continued
        assert mem.db.execute("SELECT count(*) FROM trials WHERE run_id = ? AND idx = 1",
                              [before[0]["run_id"]]).fetchone()[0] == 1
        assert {r["status"] for r in mem.db.query("SELECT status FROM eval_episodes")} == {
            "finished"}
        assert mem.db.execute("SELECT status FROM evals").fetchone()[0] == "finished"


def test_cli_resume_with_nothing_to_resume(db_path: Path, capsys: pytest.CaptureFixture) -> None:
    Memory(db_path).close()
    assert main(["eval", "--resume", "--db", str(db_path)]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: nothing to resume: every eval in this database has finished")


def test_cli_rejects_bad_options(db_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["eval", "--protocol", "gen-anything", "--db", str(db_path)]) == 2
    assert "unknown --protocol 'gen-anything'" in capsys.readouterr().err
    assert main(["eval", "--trials", "0", "--db", str(db_path)]) == 2
    assert capsys.readouterr().err.strip() == "error: --trials must be at least 1"
    assert main(["report", "--db", str(db_path)]) == 2
    assert "does not exist yet" in capsys.readouterr().err


class CrashingWorld(TinyWorld):
    """A TinyWorld whose simulator dies for good at its ``at``-th step (0: never)."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self.at, self.steps = at, 0

    def step(self, action: str):
        self.steps += 1
        if self.steps == self.at:
            raise EnvCrashed("the simulator crashed 4 times in this process")
        return super().step(action)


def test_clin_run_and_clin_eval_go_through_one_loop_with_one_crash_status(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    """`clin run` is a one-episode eval: both commands run their trials through
    runner.adapt_episode, and the same simulator crash (past its restarts) leaves the same
    rows: the run and the episode `interrupted` (resumable), trial 1 kept, trial 2
    `interrupted`; then `--resume` finishes each the same way."""
    from clin.envs import registry
    from clin.trials import runner, session

    loops: list[str] = []
    real_loop = runner.adapt_episode

    def spy(run, **kw):
        loops.append(run.scope.namespace)
        return real_loop(run, **kw)

    def build(spec: str, **_: object):
        return scripted(PER_TRIAL * 2)

    crashes = iter([3, 3, 0, 0])  # the two first runs crash; their resumes do not
    registry.register("crashing-tiny", lambda: CrashingWorld(at=next(crashes)))
    monkeypatch.setattr(runner, "adapt_episode", spy)
    monkeypatch.setattr(session, "build_llm", build)
    monkeypatch.setattr("clin.llm.spec.build_llm", build)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    common = ["--env", "crashing-tiny", "--trials", "2", "--max-steps", "2",
              "--model", "openai:fake"]
    run_db, eval_db = tmp_path / "run.db", tmp_path / "eval.db"
    run = ["run", "--task", "find-living-thing", *common, "--db", str(run_db)]
    evl = ["eval", "--protocol", "adapt", "--tasks", "find-living-thing",
           "--test-variations", "1", "--step-budget", "fixed", *common, "--db", str(eval_db)]
    try:
        for argv in (run, evl):
            assert main(argv) == 2
            assert "crashed 4 times" in capsys.readouterr().err
        assert loops == ["default", "eval-1"]  # clin run's namespace, then the eval's
        for db in (run_db, eval_db):
            with Memory(db) as mem:
                assert [(r["status"], r["error"]) for r in mem.db.query(
                    "SELECT status, error FROM runs")] == [
                        ("interrupted", "the simulator crashed 4 times in this process")]
                assert [(r["idx"], r["status"]) for r in mem.db.query(
                    "SELECT idx, status FROM trials ORDER BY id")] == [
                        (1, "completed"), (2, "interrupted")]
        with Memory(eval_db) as mem:
            assert mem.db.execute("SELECT status FROM eval_episodes").fetchone()[0] == (
                "interrupted")
        for argv in ([*run, "--resume"], ["eval", "--resume", "--db", str(eval_db)]):
            assert main(argv) == 0, capsys.readouterr().err
        assert loops == ["default", "eval-1"] * 2
        for db in (run_db, eval_db):
            with Memory(db) as mem:
                assert [r["status"] for r in mem.db.query("SELECT status FROM runs")] == [
                    "finished"]
                assert [(r["idx"], r["status"]) for r in mem.db.query(
                    "SELECT idx, status FROM trials ORDER BY id")] == [
                        (1, "completed"), (2, "interrupted"), (2, "completed")]
    finally:
        registry._SPECS.pop("crashing-tiny")
