"""`clin eval --executor ray` on a real two-node Ray cluster started on this machine (one
`ray start --head`, one `ray start --address`, one CPU each, so the two actors land on
different nodes): the same rows as local workers, an actor killed mid-episode, a hung
episode cancelled, a stopped driver resumed. The cluster is started once for the module."""

from __future__ import annotations

import functools
import json
import os
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clin.memory import Memory
from clin.trials.eval import Execution, Parts, run_eval
from clin.trials.protocols import EvalConfig
from clin.trials.report import build_report
from tests.trials.eval_helpers import dies_once, hangs_once, roomy_llm

pytest.importorskip("ray")
pytestmark = [pytest.mark.scienceworld, pytest.mark.ray]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from tests.trials.ray_helpers import QUIET, LocalCluster

    with pytest.MonkeyPatch.context() as mp:
        for k, v in QUIET.items():
            mp.setenv(k, v)  # for this process too: it is the driver
        with LocalCluster(tmp_path_factory.mktemp("ray"), nodes=2, cpus=1) as address:
            yield address


GEN_ENV = EvalConfig(protocol="gen-env", tasks=["find-living-thing"], train_variations=2,
                     test_variations=1, trials=2, max_steps=2, model="scripted")
ADAPT = EvalConfig(protocol="adapt", tasks=["find-living-thing"], test_variations=1,
                   trials=2, max_steps=2, model="scripted")


def stored(db: Path) -> dict[str, Any]:
    """What an eval stored, without ids or times: what must not depend on the executor.
    Observations are left out: ScienceWorld lists a room's objects in an order that depends
    on the JVM's history, so a fresh JVM on an actor may word the same room differently."""
    with Memory(db) as mem:
        q = mem.db.query
        return {
            "trials": list(q(
                "SELECT e.phase, e.task, e.variation, t.idx, t.status, t.score, t.steps, "
                "t.completed, t.stop_reason, t.learnings_written FROM eval_episodes e "
                "JOIN trials t ON t.run_id = e.run_id ORDER BY e.key, t.idx")),
            "steps": list(q(
                "SELECT e.key, t.idx, s.idx AS step, s.action, s.proposal, s.score, s.done, "
                "s.cited_learning_ids = '[]' AS cites_none FROM eval_episodes e "
                "JOIN trials t ON t.run_id = e.run_id JOIN steps s ON s.trial_id = t.id "
                "ORDER BY e.key, t.idx, s.idx")),
            "calls": list(q("SELECT purpose, count(*) AS n FROM llm_calls GROUP BY purpose "
                            "ORDER BY purpose")),
            "learnings": list(q(
                "SELECT task, variation, text, status, support, confidence FROM learnings "
                "ORDER BY task, variation, text")),
            "events": list(q("SELECT l.variation, e.event, e.text FROM learning_events e "
                             "JOIN learnings l ON l.id = e.learning_id "
                             "ORDER BY l.variation, e.text, e.event")),
            "metas": list(q("SELECT key, status, learnings_written, learnings_rejected, "
                            "(SELECT count(*) FROM meta_sources s WHERE s.meta_id = m.id) "
                            "AS sources FROM meta_memories m")),
            "report": [{k: v for k, v in r.items() if k != "eval_id"}
                       for r in build_report(mem, None).rows],
        }


def on_ray(cluster: str, workers: int = 1, **kw: Any) -> Execution:
    """Episodes on ``workers`` actors of the test's cluster."""
    return Execution(workers=workers, executor="ray", ray_address=cluster, **kw)


def check_clean(db: Path) -> None:
    with Memory(db) as mem:
        q = mem.db.execute
        assert q("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert q("PRAGMA foreign_key_check").fetchall() == []
        assert q("SELECT count(*) FROM trials WHERE status != 'completed'").fetchone()[0] == 0
        # every learning cited by a step exists
        for (cited,) in q("SELECT cited_learning_ids FROM steps").fetchall():
            for lid in json.loads(cited):
                assert q("SELECT 1 FROM learnings WHERE id = ?", [lid]).fetchone() is not None


def test_gen_env_on_two_nodes_stores_what_local_stores(sw, cluster: str, tmp_path: Path) -> None:
    local = run_eval(tmp_path / "local.db", GEN_ENV, parts=Parts(env=sw, llm=roomy_llm()))
    seen: list[int] = []
    remote = run_eval(tmp_path / "ray.db", GEN_ENV, execution=on_ray(cluster, workers=2),
                      parts=Parts(llm_factory=roomy_llm),
                      on_progress=lambda p: seen.append(p.done))
    assert remote.model_dump() == local.model_dump()
    # 2 training + 1 test episode of 2 trials, and the one no-memory BASE trial on the test
    # variation
    assert (remote.status, remote.trials_done, remote.metas) == ("finished", 7, 1)
    assert remote.trials_done == remote.trials_total >= 6
    assert seen == sorted(seen) and seen[-1] == remote.trials_done
    assert stored(tmp_path / "ray.db") == stored(tmp_path / "local.db")
    check_clean(tmp_path / "ray.db")
    with Memory(tmp_path / "ray.db") as mem:
        runs = [json.loads(r["config"]) for r in mem.db.query(
            "SELECT r.config FROM runs r JOIN eval_episodes e ON e.run_id = r.id")]
        assert {c["executor"] for c in runs} == {"ray"} and {c["attempt"] for c in runs} == {1}
        assert len({c["node"] for c in runs}) == 2  # both nodes of the cluster ran episodes


def test_actor_killed_mid_episode_reruns_it_once_elsewhere(cluster: str, tmp_path: Path) -> None:
    db = tmp_path / "kill.db"
    # call 4 is trial 2's first step: trial 1 already finished inside the dying actor
    factory = functools.partial(dies_once, str(tmp_path / "died"), 4)
    summary = run_eval(db, ADAPT, execution=on_ray(cluster, workers=2),
                       parts=Parts(llm_factory=factory))
    assert (tmp_path / "died").exists()
    assert (summary.status, summary.trials_done, summary.trials_total) == ("finished", 2, 2)
    check_clean(db)
    with Memory(db) as mem:
        runs = list(mem.db.query("SELECT id, status, error, config FROM runs ORDER BY id"))
        assert [r["status"] for r in runs] == ["failed", "finished"]
        failed, landed = (json.loads(r["config"]) for r in runs)
        assert "actor died" in runs[0]["error"] and failed["attempt"] == 1
        assert landed["attempt"] == 2 and landed["actor"] != failed["actor"]
        ep = mem.db.execute("SELECT run_id, status FROM eval_episodes").fetchall()
        assert ep == [(runs[1]["id"], "finished")]
        assert mem.db.execute("SELECT count(*) FROM trials").fetchone()[0] == 2
        assert mem.db.execute("SELECT count(*) FROM llm_calls").fetchone()[0] == 2 * 3
        assert mem.db.execute("SELECT count(*) FROM learnings").fetchone()[0] == 1


def test_hung_episode_is_cancelled_and_rerun(cluster: str, tmp_path: Path) -> None:
    db = tmp_path / "hang.db"
    factory = functools.partial(hangs_once, str(tmp_path / "hung"), 1)
    # one trial of one step (2 LLM calls) on an actor whose JVM is up: a few seconds, far
    # below the timeout even on a loaded machine; the hung attempt costs the whole timeout
    cfg = ADAPT.model_copy(update={"trials": 1, "max_steps": 1})
    summary = run_eval(db, cfg, execution=on_ray(cluster, episode_timeout_s=30),
                       parts=Parts(llm_factory=factory))
    assert (summary.status, summary.trials_done) == ("finished", 1)
    check_clean(db)
    with Memory(db) as mem:
        runs = list(mem.db.query("SELECT status, error FROM runs ORDER BY id"))
        assert [r["status"] for r in runs] == ["failed", "finished"]
        assert "timed out after 30 s" in runs[0]["error"]


def test_executor_ray_without_ray_installed_is_one_line(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        db_path: Path) -> None:
    from clin.cli import main

    monkeypatch.setitem(sys.modules, "clin.trials.ray_jobs", None)  # import fails
    code = main(["eval", "--executor", "ray", "--tasks", "find-plant", "--db", str(db_path)])
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert code == 2
    assert err == ["error: --executor ray needs Ray: pip install 'clin-agent[ray]'"]
    assert not db_path.exists()


def test_driver_stopped_then_resumed_keeps_landed_episodes(cluster: str, tmp_path: Path) -> None:
    db = tmp_path / "resume.db"
    cfg = ADAPT.model_copy(update={"test_variations": 2, "trials": 1, "max_steps": 1})

    def stop_after_first_landing(_: object) -> None:
        with sqlite3.connect(db) as conn:
            if conn.execute("SELECT count(*) FROM eval_episodes WHERE status = 'finished'"
                            ).fetchone()[0]:
                raise KeyboardInterrupt  # the driver goes away; the actors with it

    with pytest.raises(KeyboardInterrupt):
        run_eval(db, cfg, execution=on_ray(cluster), parts=Parts(llm_factory=roomy_llm),
                 on_progress=stop_after_first_landing)
    with Memory(db) as mem:
        first, second = (r["status"] for r in mem.db.query(
            "SELECT status FROM eval_episodes ORDER BY id"))
        assert (first, second in ("pending", "interrupted")) == ("finished", True)
        assert mem.db.execute("SELECT status FROM evals").fetchone()[0] == "interrupted"
    summary = run_eval(db, None, resume=True, execution=on_ray(cluster),
                       parts=Parts(llm_factory=roomy_llm))
    assert (summary.status, summary.trials_done, summary.ran_trials) == ("finished", 2, 1)
    check_clean(db)
    with Memory(db) as mem:
        assert mem.db.execute("SELECT count(*) FROM trials").fetchone()[0] == 2
        assert mem.db.execute("SELECT count(*) FROM runs WHERE status = 'finished'"
                              ).fetchone()[0] == 2


def test_episode_folders_of_dead_actors_are_swept(tmp_path: Path) -> None:
    """A killed actor runs no ``finally``: the next episode on its node removes its folder
    (named with its pid), and never a live process's."""
    import subprocess

    from clin.trials.ray_jobs import EPISODE_DIR_PREFIX, sweep_stale_episode_dirs

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    dead = tmp_path / f"{EPISODE_DIR_PREFIX}{gone}-abc"
    live = tmp_path / f"{EPISODE_DIR_PREFIX}{os.getpid()}-def"
    other = tmp_path / f"{EPISODE_DIR_PREFIX}x1y2"  # not ours to judge
    for d in (dead, live, other):
        d.mkdir()
        (d / "episode.db").write_bytes(b"")
    assert sweep_stale_episode_dirs(tmp_path) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, other.name])
