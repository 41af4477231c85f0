"""Two worker processes, each with its own environment (TinyWorld here; a ScienceWorld JVM
in real evals), write one SQLite file: every trial, step and LLM call lands, and no row is
lost or left running."""

from __future__ import annotations

from pathlib import Path

from clin.envs.tiny import TinyWorld
from clin.memory import Memory
from clin.trials.eval import Execution, Parts, run_eval
from clin.trials.protocols import EvalConfig
from tests.trials.eval_helpers import roomy_llm


def test_two_workers_share_the_database(tiny, db_path: Path) -> None:
    cfg = EvalConfig(protocol="adapt", tasks=["find-living-thing", "find-plant"],
                     test_variations=1, trials=2, max_steps=2, model="scripted",
                     step_budget="fixed")
    seen: list[int] = []
    summary = run_eval(db_path, cfg, execution=Execution(workers=2),
                       parts=Parts(env=tiny, env_factory=TinyWorld, llm_factory=roomy_llm),
                       on_progress=lambda p: seen.append(p.done))
    assert (summary.status, summary.trials_done, summary.trials_total) == ("finished", 4, 4)
    assert seen[-1] == 4 and seen == sorted(seen)
    with Memory(db_path) as mem:
        q = mem.db.execute
        assert q("SELECT count(DISTINCT run_id) FROM eval_episodes").fetchone()[0] == 2
        assert q("SELECT count(*) FROM trials WHERE status = 'completed'").fetchone()[0] == 4
        assert q("SELECT count(*) FROM steps").fetchone()[0] == 8
        assert q("SELECT count(*) FROM llm_calls").fetchone()[0] == 4 * 3
        assert q("SELECT count(*) FROM learnings WHERE status = 'active'").fetchone()[0] == 2
        assert q("SELECT count(*) FROM trials WHERE status != 'completed'").fetchone()[0] == 0
        assert q("PRAGMA integrity_check").fetchone()[0] == "ok"
