"""A recall in one scope returns exactly the learnings of that scope and its ancestors
(fields set to None), never a sibling's, whatever the names and the query contain."""

from __future__ import annotations

import re
import sqlite3
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clin.memory import Abstraction, Memory, ParseReport, Scope
from clin.memory.recall import fts_query

NASTY = [
    "%", "_", "%_%", "a%", "_a", "'", "''", '"', '""', "`", "OR", "NEAR", "AND", "NOT", "*",
    "-", "-x", "t*", "^x", "NEAR(a b)", "a OR b", 'x" OR "y', "x' OR '1'='1", "col:val",
    "(", ")", "[x]", "\\", "NULL", "None", "", " ", "task", "TASK", "tâche", "木",
]
BASE = Scope(namespace="ns", agent="agent", env="env", task="task", variation="v")


def fits(row: Scope, query: Scope) -> bool:
    """The contract, in Python: same namespace and agent; every narrower field either
    unset (NULL, broader) in the row or equal to the query's."""
    if (row.namespace, row.agent) != (query.namespace, query.agent):
        return False
    return all(getattr(row, f) is None or getattr(row, f) == getattr(query, f)
               for f in ("env", "task", "variation"))


def scopes() -> list[Scope]:
    out = {BASE}
    for field in ("namespace", "agent", "env", "task", "variation"):
        for name in NASTY:
            out.add(BASE.model_copy(update={field: name}))
    for field in ("env", "task", "variation"):
        out.add(BASE.model_copy(update={field: None}))
    out.add(BASE.model_copy(update={"env": None, "task": None, "variation": None}))
    return sorted(out, key=repr)


def learn(mem: Memory, scope: Scope, n: int, extra: str = "") -> None:
    ab = Abstraction(cause=f"step{n} {extra}".strip(), effect=f"goal {extra}".strip() or "goal",
                     relation="necessary", confidence="may")
    mem.apply_reflection(scope, ParseReport(accepted=[ab]))


def test_recall_returns_exactly_the_scope_and_its_ancestors(mem: Memory) -> None:
    all_scopes = scopes()
    owner = {}
    for n, scope in enumerate(all_scopes):
        learn(mem, scope, n, extra=" ".join(filter(None, scope.model_dump().values())))
        owner[mem.db.execute("SELECT max(id) FROM learnings").fetchone()[0]] = scope
    for scope in all_scopes:
        expected = {lid for lid, s in owner.items() if fits(s, scope)}
        assert {x.id for x in mem.recall(scope)} == expected, scope
        for query in NASTY:
            got = [x.id for x in mem.recall(scope, query=query)]
            assert set(got) == expected, (scope, query)
            assert len(got) == len(set(got))
            assert {x.id for x in mem.recall(scope, query=query, k=2)} <= expected


def test_empty_string_is_a_name_not_a_wildcard(mem: Memory) -> None:
    empty = BASE.model_copy(update={"task": ""})
    learn(mem, empty, 1)
    learn(mem, BASE.model_copy(update={"task": None}), 2)
    assert [x.cause for x in mem.recall(BASE)] == ["step2"]  # not the task="" row
    assert {x.cause for x in mem.recall(empty)} == {"step1", "step2"}
    assert [x.cause for x in mem.recall(BASE.model_copy(update={"task": None}))] == ["step2"]


def test_query_text_cannot_reach_a_sibling(mem: Memory) -> None:
    sibling = BASE.model_copy(update={"variation": "w"})
    learn(mem, sibling, 1, extra="secret")
    learn(mem, BASE, 2, extra="public")
    for query in ["secret", '"secret"', "secret OR public", "secret*", "NEAR(secret public)",
                  "cause:secret", "*", "' OR 1=1 --"]:
        assert [x.cause for x in mem.recall(BASE, query=query)] == ["step2 public"], query


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    a=st.text(alphabet="%_'\"*-():^ ORNEAaé木", min_size=0, max_size=8),
    b=st.text(alphabet="%_'\"*-():^ ORNEAaé木", min_size=0, max_size=8),
    query=st.text(max_size=30),
)
def test_any_two_sibling_names_stay_apart(a: str, b: str, query: str) -> None:
    if a == b:
        return
    with tempfile.TemporaryDirectory() as tmp, Memory(Path(tmp) / "m.db") as mem:
        sa, sb = BASE.model_copy(update={"task": a}), BASE.model_copy(update={"task": b})
        learn(mem, sa, 1, extra="alpha")
        learn(mem, sb, 2, extra="beta")
        assert [x.cause for x in mem.recall(sa, query=query or None)] == ["step1 alpha"]
        assert [x.cause for x in mem.recall(sb, query=query or None)] == ["step2 beta"]


_SAFE = re.compile(r'^"[^"]*"(?: OR "[^"]*")*$')


def test_fts_query_dedupes_and_drops_operators() -> None:
    assert fts_query('Water "the" PLANT water* -plant NEAR(x)') == (
        '"water" OR "the" OR "plant" OR "near"')
    assert fts_query("* - ^ : ( )") is None


def test_fts_query_only_ever_builds_quoted_terms(mem: Memory) -> None:
    learn(mem, BASE, 1, extra="water plant")
    for text in [*NASTY, 'water" OR "x', "NEAR(water plant, 2)", "water* -plant", "a:b c^d",
                 "x" * 5000, "water plant " * 50]:
        q = fts_query(text)
        if q is None:
            continue
        assert _SAFE.match(q), q
        assert q.count(" OR ") < 32 and max(map(len, q.split(" OR "))) <= 66
        try:
            mem.db.execute("SELECT rowid FROM learnings_fts WHERE learnings_fts MATCH ?",
                             [q]).fetchall()
        except sqlite3.OperationalError as exc:  # pragma: no cover - the failure we test for
            raise AssertionError(f"{text!r} -> {q!r}: {exc}") from None
