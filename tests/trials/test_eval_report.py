"""`clin report` renders valid PNGs and documents, and every table number equals an
independent SQL query over the raw tables (trials, llm_calls, eval_episodes)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from clin.cli import main
from clin.envs.tiny import TinyWorld
from clin.llm import ScriptedLLM
from clin.llm.base import Message, current_purpose
from clin.memory import Memory
from clin.trials.eval import Parts, run_eval
from clin.trials.protocols import EvalConfig
from clin.trials.report import build_report, markdown_table
from tests.trials.eval_helpers import answer

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def varied() -> ScriptedLLM:
    """Every fourth controller call declares the task complete, so steps per trial vary."""
    count = {"n": 0}

    def reply(messages: list[Message]) -> str:
        if current_purpose() == "controller":
            count["n"] += 1
            if count["n"] % 4 == 0:
                return json.dumps({"used_learnings": [], "rationale": "", "action":
                                   "TASK_COMPLETE"})
        return answer(messages)

    return ScriptedLLM([reply] * 200)


@pytest.fixture(scope="module")
def gen_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    db = tmp_path_factory.mktemp("report") / "clin.db"
    cfg = EvalConfig(protocol="gen-env", tasks=["find-living-thing", "boil"],
                     train_variations=1, test_variations=1, trials=2, max_steps=3,
                     model="scripted",
                     step_budget="fixed")
    assert run_eval(db, cfg, parts=Parts(env=TinyWorld(), llm=varied())).status == "finished"
    yield db


def _expected(mem: Memory, phase: str, task: str) -> dict[str, float]:
    """The report's numbers recomputed from raw tables, without the views."""
    per_episode = []
    for ep in mem.db.query("SELECT run_id FROM eval_episodes WHERE phase = ? AND task = ?",
                           [phase, task]):
        trials = list(mem.db.query(
            "SELECT t.idx, t.score, t.steps, (SELECT sum(c.prompt_tokens + c.completion_tokens) "
            "FROM llm_calls c WHERE c.trial_id = t.id) AS tok FROM trials t "
            "WHERE t.run_id = ? AND t.status = 'completed' ORDER BY t.idx", [ep["run_id"]]))
        per_episode.append({
            "trial1_score": trials[0]["score"], "final_score": trials[-1]["score"],
            "best_score": max(t["score"] for t in trials),
            "steps_per_trial": sum(t["steps"] for t in trials) / len(trials),
            "tokens_per_trial": sum(t["tok"] for t in trials) / len(trials),
        })
    return {k: sum(e[k] for e in per_episode) / len(per_episode) for k in per_episode[0]}


def test_report_numbers_equal_sql(gen_db: Path) -> None:
    with Memory(gen_db) as mem:
        rep = build_report(mem)
        assert rep.protocol == "gen-env" and len(rep.rows) == 2
        for row in rep.rows:
            test = _expected(mem, "test", row["task"])
            train = _expected(mem, "train", row["task"])
            for key, value in test.items():
                assert row[key] == pytest.approx(value, abs=0.051), (row["task"], key)
            assert row["train_trial1_score"] == pytest.approx(train["trial1_score"], abs=0.051)
        steps = mem.db.execute("SELECT count(DISTINCT steps) FROM v_eval_trials").fetchone()[0]
        assert steps > 1  # the numbers compared are not all alike
        all_row = next(g for g in rep.group_rows if g["grp"] == "all")
        assert all_row["tokens_per_trial"] == pytest.approx(
            sum(r["tokens_per_trial"] for r in rep.rows) / 2, abs=0.051)
        assert {g["grp"] for g in rep.group_rows} == {"short", "long", "all"}
        table = markdown_table(rep)
        assert "GEN (zero-shot)" in table and "BASE (no memory)" in table and "| avg all |" in table


def test_clin_report_writes_pngs_and_documents(gen_db: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "rep"
    assert main(["report", "--db", str(gen_db), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "eval 1: gen-env (finished)" in printed and "wrote" in printed
    pngs = sorted(out.glob("*.png"))
    assert [p.name for p in pngs] == ["eval1-scores.png", "eval1-steps.png"]
    for p in pngs:
        assert p.read_bytes()[:8] == PNG_MAGIC and p.stat().st_size > 5000
    md = (out / "eval1-report.md").read_text()
    assert "](eval1-scores.png)" in md and "## Meta-memories" in md
    assert "| find-living-thing | short |" in md and "| boil | long |" in md
    page = (out / "eval1-report.html").read_text()
    assert page.count("data:image/png;base64,iVBORw0KGgo") == 2  # embedded, self-contained


def test_report_unknown_eval_is_a_user_error(gen_db: Path, capsys: pytest.CaptureFixture
                                             ) -> None:
    assert main(["report", "--db", str(gen_db), "--run", "99"]) == 2
    assert capsys.readouterr().err.startswith("error: no eval 99 in this database")
