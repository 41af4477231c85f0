"""``clin view`` on a database made by a real ScienceWorld run (scripted LLM), driven in a real
headless Chromium: following links across pages, screenshots, a read-only check under
probing, SQL injection and paths outside the database, and the static export."""

from __future__ import annotations

import hashlib
import html
import http.client
import io
import re
import sqlite3
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest

from clin.cli import main

from .viewer_helpers import LEARNING, make_run_db


@pytest.fixture(scope="module")
def run_db(tmp_path_factory: pytest.TempPathFactory, sw) -> dict:
    path = tmp_path_factory.mktemp("viewer") / "clin.db"
    summary = make_run_db(path, sw)
    t1, t2 = (t.trial_id for t in summary.trials)
    return {"path": path, "run_id": summary.run_id, "t1": t1, "t2": t2}


def _follow(page, link) -> None:
    """Click a link and wait until the page it leads to has loaded."""
    with page.expect_navigation():
        link.click()


def _shot(page, path: Path) -> Path:
    page.screenshot(path=str(path), full_page=True)
    _assert_not_blank(path)
    return path


def _assert_not_blank(path: Path) -> None:
    from PIL import Image

    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    img = Image.open(io.BytesIO(data))
    img.load()
    assert img.width > 100 and img.height > 100
    gray = img.convert("L")
    lo, hi = gray.getextrema()
    assert hi - lo > 100, f"{path} is blank"
    colors = gray.getcolors(maxcolors=256 * 256)
    assert colors is not None and len(colors) > 16, f"{path} is nearly blank"


def _checksum(db: Path) -> tuple[str, str]:
    """(bytes of the file, every row of every table), both hashed."""
    raw = hashlib.sha256(db.read_bytes()).hexdigest()
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        dump = hashlib.sha256("\n".join(conn.iterdump()).encode()).hexdigest()
    finally:
        conn.close()
    return raw, dump


def _raw(base: str, method: str, path: str, body: str | None = None) -> tuple[int, str]:
    """An HTTP request with the path sent exactly as given (no ``..`` normalization),
    following redirects (Datasette redirects %-escapes to its ~-escapes)."""
    u = urlsplit(base)
    for _ in range(5):
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        try:
            headers = {"Content-Type": "application/x-www-form-urlencoded"} if body else {}
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            status, text = resp.status, resp.read().decode("utf-8", "replace")
            location = resp.getheader("Location")
        finally:
            conn.close()
        if status not in (301, 302, 307, 308) or not location:
            return status, text
        path = location
    raise AssertionError(f"redirect loop at {path}")


# ---------------------------------------------------------------------- browsing
def test_follow_trial_step_learning_to_the_trial_that_wrote_it(
        viewer: str, browser, run_db: dict, tmp_path: Path) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(viewer + "/")
    assert page.locator("#runs").get_by_text("grow-plant").count() >= 1
    _shot(page, tmp_path / "index.png")
    with page.expect_navigation():
        page.locator("select[name=task]").select_option("grow-plant")  # filter by task
    assert page.url.endswith("/?task=grow-plant")
    assert page.locator("#runs tr").count() == 2  # header + the one run
    _follow(page, page.get_by_role("link", name=f"run {run_db['run_id']}", exact=True).first)
    assert page.url.endswith(f"/run/{run_db['run_id']}")
    assert page.locator("svg.chart polyline").count() >= 1  # score by trial
    _follow(page, page.get_by_role("link", name="trial 2", exact=True))
    assert page.url.endswith(f"/trial/{run_db['t2']}")
    steps = page.locator("#steps")
    assert "go to kitchen" in steps.inner_text()
    assert page.locator("#steps tr.up").count() >= 1  # the score change is highlighted
    assert "normalized" in steps.inner_text()  # grounding kind
    assert LEARNING in page.locator("#reflection").inner_text()
    _shot(page, tmp_path / "trial.png")

    _follow(page, page.locator("#step-1 td").first.get_by_role("link"))  # the step's own page
    assert page.url.endswith(f"/trial/{run_db['t2']}/step/1")
    assert "learning 1 says so" in page.content()  # its rationale
    prompt = page.locator("pre.prompt").first
    assert not prompt.is_visible()
    page.get_by_text("prompt", exact=True).first.click()  # the LLM prompt, on demand
    assert prompt.is_visible() and "ScienceWorld" in prompt.inner_text()
    assert "open door to kitchen" in page.locator("pre.answer").first.inner_text()
    _shot(page, tmp_path / "step.png")

    _follow(page, page.locator(".cited a").first)  # the learning it cited
    assert "/learning/" in page.url
    assert page.locator("#learning-text").inner_text() == LEARNING
    assert page.locator("#citing tr").count() >= 2  # every step that cited it
    _shot(page, tmp_path / "learning.png")

    _follow(page, page.locator("#written-by a").first)  # the trial whose reflection wrote it
    assert page.url.endswith(f"/trial/{run_db['t1']}")
    assert page.locator("h1").inner_text().startswith("Trial 1 of run")
    _shot(page, tmp_path / "writer.png")
    page.close()


def test_compare_and_sql_link(viewer: str, browser, run_db: dict, tmp_path: Path) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{viewer}/trial/{run_db['t2']}")
    _follow(page, page.get_by_role("link", name="compare with trial 1"))
    assert page.url.endswith(f"/compare/{run_db['t1']}/{run_db['t2']}")
    assert "at step 3" in page.locator(".meta").inner_text()  # look around vs inventory
    assert page.locator("#row-3").get_attribute("class") == "diverge"
    between = page.locator("#between").inner_text()
    assert "added" in between and LEARNING in between
    _shot(page, tmp_path / "compare.png")

    _follow(page, page.locator("#sql-link"))
    assert "/sql/compare/" in page.url
    assert "learning_events" in page.locator("pre.sql").all_inner_texts()[-3]
    _follow(page, page.get_by_role("link", name="run in Datasette").first)  # Datasette runs it
    assert page.locator("table.rows-and-columns").count() == 1
    assert "grow-plant" in page.content()
    page.close()


# ---------------------------------------------------------------------- read-only
ATTACKS = [
    "/trial/1%20OR%201=1", "/trial/1;DROP%20TABLE%20trials", "/learning/1'--",
    "/?task=x'%20OR%20'1'='1", "/?task=grow-plant'--", "/run/1?run_id=2%20OR%201=1",
    "/compare/1/2%20UNION%20SELECT%20text%20FROM%20learnings", "/eval/1'", "/llm/-1",
    "/trial/99999999999999999999999", "/trial/1/step/1?idx=1%20OR%201=1",
    "/sql/trial/1%20OR%201=1", "/clin/learnings?_sort=text;DROP%20TABLE%20steps",
]
OUTSIDE = [
    "/../../../../etc/passwd", "/-/static/../../../../../etc/passwd",
    "/-/static/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd", "/clin/..%2f..%2f..%2fetc%2fpasswd",
    "/sql/../../../etc/passwd", "/trial/..%2f..%2fetc%2fpasswd", "/etc/passwd",
    "/clin.db", "/-/static-plugins/clin_viewer/../../../../etc/passwd",
]
WRITES = [
    "DROP TABLE steps", "DELETE FROM learnings", "UPDATE trials SET score = 100",
    "INSERT INTO runs (started_at, status) VALUES ('x', 'x')", "PRAGMA journal_mode = DELETE",
    "ATTACH DATABASE '/tmp/x.db' AS x", "VACUUM", "CREATE TABLE t (x)",
    "select 1; drop table steps",
]


def _crawl(base: str) -> tuple[set[str], set[str]]:
    """Every viewer page reachable from ``/`` (each must answer 200), and the Datasette pages
    they link to (tables, and each "SQL" view's "run in Datasette"), fetched once each."""
    ours, theirs, todo = set(), set(), ["/"]
    while todo:
        path = todo.pop()
        if path in ours:
            continue
        ours.add(path)
        status, body = _raw(base, "GET", path)
        assert status == 200, path
        if not path.startswith("/sql/"):
            assert 'id="sql-link" href="/sql' in body, f"{path} has no SQL link"
        for href in re.findall(r'href="([^"#]*)', body):
            href = html.unescape(href)
            if not href.startswith("/"):
                continue
            if href == "/clin" or href.startswith(("/clin/", "/clin?")):
                if href not in theirs:
                    theirs.add(href)
                    status, body = _raw(base, "GET", href)
                    assert status == 200, (path, href)
            elif href not in ours:
                todo.append(href)
    return ours, theirs


def test_no_request_changes_the_database(viewer: str, browser, run_db: dict) -> None:
    db = run_db["path"]
    before = _checksum(db)
    ours, theirs = _crawl(viewer)  # everything links to everything, and every link works
    t1, t2, run_id = run_db["t1"], run_db["t2"], run_db["run_id"]
    assert {"/", f"/run/{run_id}", f"/trial/{t1}", f"/trial/{t2}", f"/trial/{t2}/step/2",
            f"/compare/{t1}/{t2}", "/learning/1", "/learning/2", f"/sql/trial/{t2}"} <= ours
    assert any(p.startswith("/llm/") for p in ours)
    assert sum(p.startswith("/clin?sql=") for p in theirs) >= 10
    pages = sorted(ours)[:40] + ["/clin", "/clin/learnings", "/clin/steps",
                                 "/clin/current_learnings?task=grow-plant", "/-/metadata"]
    page = browser.new_page()
    for p in pages[-8:]:  # and in the browser
        assert page.goto(viewer + p).status == 200, p
    page.close()
    # Probe: every method on our pages and Datasette's, and SQL that writes.
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        for p in [*pages, "/-/messages", "/-/permissions", "/-/logout"]:
            status, _ = _raw(viewer, method, p, body="sql=DROP+TABLE+steps")
            assert status == 405, (method, p, status)
    for sql in WRITES:
        for p in ("/clin", "/clin.json"):
            status, body = _raw(viewer, "GET", f"{p}?sql={quote(sql)}")
            assert status >= 400, (sql, status)
            status, _ = _raw(viewer, "POST", p, body=f"sql={quote(sql)}")
            assert status == 405, (sql, status)
    for p in ATTACKS:
        status, body = _raw(viewer, "GET", p)
        assert status >= 400, (p, status)
        assert "error" in body.lower(), p
        assert LEARNING not in body, f"{p} returned data"
    for p in OUTSIDE:
        status, body = _raw(viewer, "GET", p)
        assert status >= 400, (p, status)
        assert "root:" not in body and "SQLite format" not in body, p
    assert _checksum(db) == before


def test_pages_load_while_a_run_is_writing(viewer: str, run_db: dict) -> None:
    writer = sqlite3.connect(run_db["path"], isolation_level=None, timeout=5)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("UPDATE trials SET score = 55 WHERE id = ?", [run_db["t1"]])
        status, body = _raw(viewer, "GET", f"/trial/{run_db['t1']}")
        assert status == 200 and "go to kitchen" in body  # readers never wait for a writer
        writer.execute("COMMIT")
        status, body = _raw(viewer, "GET", f"/run/{run_db['run_id']}")
        assert status == 200 and ">55<" in body  # and see what it committed
    finally:
        writer.close()


# ---------------------------------------------------------------------- static export
def test_static_export_opens_from_disk(browser, run_db: dict, tmp_path: Path) -> None:
    out = tmp_path / "site"
    assert main(["report", "--html", "--run-id", str(run_db["run_id"]),
                 "--db", str(run_db["path"]), "--out", str(out)]) == 0
    names = {p.name for p in out.iterdir()}
    assert {"index.html", f"trial-{run_db['t2']}.html", f"trial-{run_db['t2']}-steps.html",
            "learning-1.html", f"compare-{run_db['t1']}-{run_db['t2']}.html"} <= names
    for f in out.glob("*.html"):  # relative links only: it must open from disk
        assert 'href="/' not in f.read_text(), f
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto((out / "index.html").as_uri())
    _follow(page, page.get_by_role("link", name="trial 2", exact=True))
    assert page.url.endswith(f"trial-{run_db['t2']}.html")
    _follow(page, page.locator(".cited a").first)
    assert page.locator("#learning-text").inner_text() == LEARNING
    _follow(page, page.locator("#written-by a").first)
    assert page.url.endswith(f"trial-{run_db['t1']}.html")
    _shot(page, tmp_path / "static.png")
    page.close()


def test_view_user_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["view", "--db", str(tmp_path / "missing.db")]) == 2
    bad = tmp_path / "notes.db"
    bad.write_text("not a database")
    assert main(["view", "--db", str(bad)]) == 2
    assert main(["view", "--db", str(bad), "--port", "70000"]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "not a SQLite database" in err and "--port" in err
    assert "Traceback" not in err
    assert bad.read_text() == "not a database"

