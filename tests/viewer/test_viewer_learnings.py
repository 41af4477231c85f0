"""The viewer as a newcomer meets it, on a run of the pure-Python TinyWorld (no Java): the
Learnings page (search, filters, every learning reachable from the index, one added by hand
included), long text clipped with the whole one click away, and the hardening of the server
(Host and Origin refused, security headers, bidi controls neutralised, fts3_tokenizer and
load_extension denied in both SQL paths)."""

from __future__ import annotations

import http.client
import json
import sqlite3
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest

from clin.cli import main
from clin.envs.tiny import TinyWorld
from clin.memory import Memory, Scope

from .viewer_helpers import LEARNING, make_run_db

BY_HAND = "reading the seed packet MAY BE NECESSARY to planting the right seed"
REVERSED = "moving the \u202eexe.txt file SHOULD BE NECESSARY to tidying the greenhouse"
LONG = 200_000


@pytest.fixture(scope="module")
def run_db(tmp_path_factory: pytest.TempPathFactory) -> dict:
    path = tmp_path_factory.mktemp("learnings") / "clin.db"
    summary = make_run_db(path, TinyWorld())
    t1, t2 = (t.trial_id for t in summary.trials)
    scope = Scope(env="scienceworld", task="grow-plant", variation="0")
    with Memory(path) as mem:
        by_hand = mem.add_learning(scope, BY_HAND).id
        reversed_id = mem.add_learning(scope, REVERSED).id
    conn = sqlite3.connect(path)
    with conn:  # a runaway model's 200 KB proposal and rationale
        conn.execute("UPDATE steps SET proposal = ?, rationale = ? WHERE trial_id = ? "
                     "AND idx = 2", ["go " * (LONG // 3), "why " * (LONG // 4), t1])
    conn.close()
    return {"path": path, "run_id": summary.run_id, "t1": t1, "t2": t2, "by_hand": by_hand,
            "reversed": reversed_id}


def _get(base: str, path: str, headers: dict[str, str] | None = None
         ) -> tuple[int, dict[str, str], str]:
    u = urlsplit(base)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        conn.putrequest("GET", path, skip_host=True)
        hdrs = {"Host": u.netloc, **(headers or {})}
        for k, v in hdrs.items():
            conn.putheader(k, v)
        conn.endheaders()
        resp = conn.getresponse()
        return (resp.status, {k.lower(): v for k, v in resp.getheaders()},
                resp.read().decode("utf-8", "replace"))
    finally:
        conn.close()


# ---------------------------------------------------------------------- Learnings page
def test_find_learnings_by_search_and_reach_one_added_by_hand(
        viewer: str, browser, run_db: dict, tmp_path: Path) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(viewer + "/")
    with page.expect_navigation():
        page.locator("#learnings-link a").click()  # from the index
    assert urlsplit(page.url).path == "/learnings"
    table = page.locator("#learnings")
    assert BY_HAND in table.inner_text() and LEARNING in table.inner_text()
    page.locator("input[name=q]").fill("seed packet")
    with page.expect_navigation():
        page.locator("#filters button").click()
    assert "q=seed+packet" in page.url
    rows = page.locator("#learnings tr")
    assert rows.count() == 2, table.inner_text()  # header + the one match
    assert "added by hand" in rows.nth(1).inner_text()
    page.screenshot(path=str(tmp_path / "learnings.png"), full_page=True)
    with page.expect_navigation():
        page.get_by_role("link", name=f"#{run_db['by_hand']}", exact=True).click()
    assert page.locator("#learning-text").inner_text() == BY_HAND
    page.goto(viewer + "/learnings")
    with page.expect_navigation():  # filters submit when changed (the page's one script)
        page.locator("select[name=confidence]").select_option("should")
    assert "confidence=should" in page.url
    assert BY_HAND not in page.locator("#learnings").inner_text()
    assert LEARNING in page.locator("#learnings").inner_text()
    assert not [e for e in errors if "Content Security Policy" in e], errors
    page.close()


def test_learnings_filters_and_sorts(viewer: str, run_db: dict) -> None:
    status, _, body = _get(viewer, "/learnings?status=retired")
    assert status == 200 and "looking around the kitchen" in body and BY_HAND not in body
    status, _, body = _get(viewer, "/learnings?sort=recent")
    assert status == 200 and body.index("tidying the greenhouse") < body.index(LEARNING)
    status, _, body = _get(viewer, "/learnings?q=" + quote('kitchen* -door^ ('))
    assert status == 200 and LEARNING in body  # operators never reach FTS5
    for bad in ("sort=evil", "status=gone", "confidence=sure", "page=0", "task=nope"):
        assert _get(viewer, f"/learnings?{bad}")[0] == 400, bad
    assert _get(viewer, "/learnings?page=9")[0] == 404


# ---------------------------------------------------------------------- pages
def test_long_text_is_clipped_with_the_whole_one_click_away(viewer: str, browser,
                                                            run_db: dict) -> None:
    status, _, body = _get(viewer, f"/trial/{run_db['t1']}")
    assert status == 200 and len(body) < 60_000, len(body)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{viewer}/trial/{run_db['t1']}")
    assert page.evaluate("document.body.scrollHeight") < 5000
    more = page.locator("#step-2 a.more").first
    assert f"all {LONG // 3 * 3} characters" in more.inner_text()
    with page.expect_navigation():
        more.click()
    assert page.url.endswith(f"/trial/{run_db['t1']}/step/2")
    page.close()


def test_run_compare_and_trial_pages(viewer: str, run_db: dict) -> None:
    _, _, run = _get(viewer, f"/run/{run_db['run_id']}")
    produced = run[run.index('id="produced"'):]
    assert LEARNING in produced and BY_HAND not in produced
    _, _, cmp = _get(viewer, f"/compare/{run_db['t1']}/{run_db['t2']}")
    assert cmp.count("<th>observation</th>") == 2
    _, _, trial = _get(viewer, f"/trial/{run_db['t2']}")
    assert 'id="goal"' in trial and "Your task is to grow" in trial
    assert "None" not in trial.replace("NoneType", "")
    _, _, learning = _get(viewer, f"/learning/{run_db['by_hand']}")
    assert "None" not in learning and "\u2014" in learning  # NULL shown as "—"
    assert "trial id" not in learning + trial + run + cmp  # trials are "trial N of run R"


def test_bidi_controls_are_neutralised(viewer: str, run_db: dict) -> None:
    for path in (f"/learning/{run_db['reversed']}", "/learnings",
                 f"/clin/learnings/{run_db['reversed']}"):
        status, _, body = _get(viewer, path)
        assert status == 200, path
        assert "\u202e" not in body and "&lt;U+202E&gt;exe.txt" in body, path


def test_sql_error_keeps_the_editor_with_the_query(viewer: str) -> None:
    sql = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
    for q in (sql, "DELETE FROM runs"):
        status, _, body = _get(viewer, "/clin?sql=" + quote(q))
        assert status == 400
        assert 'id="sql-editor"' in body and "<textarea" in body
        assert q.replace("<", "&lt;") in body


# ---------------------------------------------------------------------- hardening
@pytest.mark.parametrize("headers", [
    {"Host": "evil.example"},
    {"Host": "evil.example:8001"},
    {"Host": "127.0.0.1.evil.example"},
    {"Host": "localhost@evil.example"},
    {"Origin": "http://evil.example"},
    {"Origin": "null"},
])
def test_requests_for_other_hosts_or_origins_are_refused(viewer: str, headers) -> None:
    for path in ("/", "/learnings", "/clin.json?sql=select+1", "/-/versions.json"):
        status, hdrs, body = _get(viewer, path, headers)
        assert status == 403, (path, headers)
        assert "learning" not in body.lower()
        assert hdrs["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "[::1]"])
def test_local_hosts_are_answered_with_security_headers(viewer: str, host: str) -> None:
    port = urlsplit(viewer).port
    status, hdrs, _ = _get(viewer, "/", {"Host": f"{host}:{port}",
                                         "Origin": f"http://{host}:{port}"})
    assert status == 200
    assert "frame-ancestors 'none'" in hdrs["content-security-policy"]
    assert "script-src 'self';" in hdrs["content-security-policy"]  # no inline script
    assert hdrs["x-content-type-options"] == "nosniff"
    assert hdrs["referrer-policy"] == "no-referrer"


DENIED = ["SELECT fts3_tokenizer('simple')",
          "SELECT fts3_tokenizer('simple', x'0000000000000000')",
          "SELECT load_extension('/tmp/evil.so')",
          "SELECT length(zeroblob(200000000))"]


@pytest.mark.parametrize("sql", DENIED)
def test_dangerous_functions_are_denied_in_the_viewer(viewer: str, run_db: dict, sql: str) -> None:
    status, _, body = _get(viewer, "/clin.json?sql=" + quote(sql))
    assert status == 400
    err = json.loads(body)["error"]
    assert "not authorized" in err or "too big" in err, err
    assert _get(viewer, "/")[0] == 200  # still serving
    assert _get(viewer, "/_memory.json?sql=" + quote(sql))[0] == 404  # no other database


@pytest.mark.parametrize("sql", DENIED)
def test_dangerous_functions_are_denied_in_memory_sql(run_db: dict, sql: str, capsys) -> None:
    assert main(["memory", "sql", sql, "--db", str(run_db["path"])]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
