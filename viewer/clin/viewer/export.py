"""The static export (``clin report --html``): the viewer's pages for one run or one eval,
written as a folder of HTML files with relative links, so it opens from disk (or a zip, or a
paper's supplementary material) with no server. Same builders and templates as the server."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Callable
from pathlib import Path

from clin.memory.sql import harden

from . import pages, render
from .database import ViewerError, check_database
from .pages import Page, PageError
from .urls import StaticUrls, file_name


def _ids(conn: sqlite3.Connection, sql: str, params: list[object]) -> list[int]:
    return [r[0] for r in conn.execute(sql, params) if r[0] is not None]


def export_static(db: Path, out_dir: Path, *, run_id: int | None = None,
                  eval_id: int | None = None) -> list[Path]:
    """Write the pages of run ``run_id`` or eval ``eval_id`` into ``out_dir`` (``index.html``
    is its top page); returns the files written. Raises :class:`ViewerError` for an unknown
    run or eval, or a folder that cannot be written."""
    if (run_id is None) == (eval_id is None):
        raise ValueError("give exactly one of run_id and eval_id")
    path = check_database(db)
    conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        harden(conn, reads_only=False)
        return _export(conn, out_dir, run_id, eval_id)
    finally:
        conn.close()


def _export(conn: sqlite3.Connection, out_dir: Path, run_id: int | None,
            eval_id: int | None) -> list[Path]:
    if eval_id is not None:
        try:
            top = pages.eval_page(conn, eval_id)
        except PageError as exc:
            raise ViewerError(str(exc)) from None
        top_path = f"/eval/{eval_id}"
        runs = _ids(conn, "SELECT run_id FROM eval_episodes WHERE eval_id = ? ORDER BY id",
                    [eval_id])
        meta_learnings = _ids(conn, "SELECT ml.learning_id FROM meta_learnings ml JOIN "
                              "meta_memories m ON m.id = ml.meta_id WHERE m.eval_id = ?",
                              [eval_id])
    else:
        assert run_id is not None  # export() asks for one of the two
        try:
            top = pages.run(conn, run_id)
        except PageError as exc:
            raise ViewerError(str(exc)) from None
        top_path, runs, meta_learnings = f"/run/{run_id}", [run_id], []
    marks = ",".join("?" for _ in runs) or "NULL"
    trial_rows = conn.execute(
        f"SELECT id, run_id, idx FROM trials WHERE run_id IN ({marks}) ORDER BY run_id, idx",
        runs).fetchall()
    trials = [r[0] for r in trial_rows]
    tmarks = ",".join("?" for _ in trials) or "NULL"
    learnings = set(meta_learnings)
    learnings |= set(_ids(conn, f"SELECT DISTINCT learning_id FROM learning_events "
                                f"WHERE trial_id IN ({tmarks})", trials))
    learnings |= set(_ids(conn, f"SELECT DISTINCT j.value FROM steps s, "
                                f"json_each(s.cited_learning_ids) j WHERE s.trial_id IN "
                                f"({tmarks})", trials))
    compares = {(a[0], b[0]) for a, b in itertools.pairwise(trial_rows) if a[1] == b[1]}
    urls = StaticUrls(runs=set(runs), trials=set(trials), learnings=learnings,
                      evals={eval_id} if eval_id is not None else set(), compares=compares)

    jobs: list[tuple[str, Callable[[], Page]]] = [(top_path, lambda: top)]
    jobs += [(f"/run/{r}", lambda r=r: pages.run(conn, r)) for r in runs if r != run_id]
    for t in trials:
        jobs.append((f"/trial/{t}", lambda t=t: pages.trial(conn, t)))
        jobs.append((f"/trial/{t}/steps", lambda t=t: pages.trial(conn, t, with_prompts=True)))
    jobs += [(f"/compare/{a}/{b}", lambda a=a, b=b: pages.compare(conn, a, b))
             for a, b in sorted(compares)]
    jobs += [(f"/learning/{lid}", lambda lid=lid: pages.learning(conn, lid))
             for lid in sorted(learnings)]

    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ViewerError(f"cannot create {out_dir}: {exc.strerror}") from None
    written = []
    for page_path, build in jobs:
        page = build()
        html = render.render_page(page, page_path, urls)
        names = [file_name(page_path)] + (["index.html"] if page_path == top_path else [])
        for name in names:
            written.append(_write(out_dir / name, html))
        written.append(_write(out_dir / urls.sql(page_path),  # type: ignore[operator]
                              render.render_sql(page, page_path, urls)))
    return written


def _write(path: Path, text: str) -> Path:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ViewerError(f"cannot write {path}: {exc.strerror}") from None
    return path
