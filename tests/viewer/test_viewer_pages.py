"""The viewer's pages and static export on a generated eval database (``bench.view``'s
generator, small): evals, meta-memory provenance, and links that all lead somewhere."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from bench.view import generate
from clin.cli import main
from clin.viewer import pages
from clin.viewer.pages import NotFound, PageError
from clin.viewer.routes import resolve


@pytest.fixture(scope="module")
def eval_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    path = tmp_path_factory.mktemp("viewer-eval") / "eval.db"
    return path, generate(path, episodes=4, trials=3, steps=6)


def _ro(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)


def test_eval_run_trial_and_learning_pages(eval_db) -> None:
    path, ids = eval_db
    conn = _ro(path)
    ev = pages.eval_page(conn, 1)
    assert len(ev.ctx["episodes"]) == 4 and "<svg" in ev.ctx["chart"]
    assert [c["trial"] for c in ev.ctx["curve"]] == [1, 2, 3]
    assert ev.ctx["metas"][0]["learning_id"] == ids["meta_learning"]
    assert len(pages.eval_page(conn, 1, task="boil").ctx["episodes"]) == 1
    with pytest.raises(PageError):
        pages.eval_page(conn, 1, task="boil' OR '1'='1")
    trial = pages.trial(conn, 5)
    assert len(trial.ctx["steps"]) == 6 and trial.ctx["reflection"] is not None
    meta = pages.learning(conn, ids["meta_learning"])
    assert meta.ctx["sources"][0]["source_trial_id"] == 1  # where the meta-memory came from
    cited = pages.learning(conn, ids["cited_learning"])
    assert len(cited.ctx["cited"]) == ids["cites"]  # every step that cited it
    assert all(t["score"] is not None for t in cited.ctx["trials_used"])
    assert [h["support"] for h in cited.ctx["history"]][0] == 1
    # the "SQL" view's queries, run as shown with their named parameters, give the page's rows
    shown = {q.name: conn.execute(q.sql, q.params).fetchall() for q in trial.queries}
    assert len(shown["steps"]) == len(trial.ctx["steps"])
    assert len(shown["learning_events"]) == len(trial.ctx["events"])
    assert len(shown["run_trials"]) == len(trial.ctx["siblings"]) == 3
    assert len(shown["reflection"]) == 1
    with pytest.raises(NotFound):
        pages.trial(conn, 10**6)
    conn.close()


def test_routes_accept_plain_ids_and_known_parameters_only() -> None:
    assert resolve("/trial/3", {}) is not None
    for path, args in [("/trial/3 OR 1=1", {}), ("/trial/-1", {}), ("/trial/٣", {}),
                       ("/trial/3", {"id": ["1"]}), ("/", {"task": ["a", "b"]}),
                       ("/trial/" + "9" * 19, {})]:
        with pytest.raises(PageError):
            resolve(path, args)


def test_static_eval_export_has_no_dead_links(eval_db, tmp_path: Path) -> None:
    path, ids = eval_db
    out = tmp_path / "site"
    assert main(["report", "--html", "--run", "1", "--db", str(path), "--out", str(out)]) == 0
    assert (out / "eval-1.html").exists() and (out / "index.html").exists()
    assert (out / f"learning-{ids['meta_learning']}.html").exists()
    hrefs = 0
    for f in out.glob("*.html"):
        for href in re.findall(r'href="([^"]+)"', f.read_text()):
            assert not href.startswith(("/", "http")), (f.name, href)
            target = href.split("#")[0]
            assert (out / target).exists(), f"{f.name} links to missing {target}"
            hrefs += 1
    assert hrefs > 100
