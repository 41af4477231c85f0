"""Reading a scope's learnings back: ``recall`` (what applies, best first) and a learning's
history. The ranking rules live in ``memory.ranking``."""

from __future__ import annotations

from typing import Any

from . import ranking
from .db import Database
from .learnings import Learning
from .scope import Scope

_COLUMNS = (
    "l.id, l.text, l.cause, l.effect, l.relation, l.confidence, l.support, "
    "round(l.score_sum / max(l.support, 1), 2) AS mean_score, l.env, l.task, "
    "l.variation, l.status, l.first_trial_id, l.last_trial_id, l.last_seen, "
    "(l.env IS NOT NULL) + (l.task IS NOT NULL) + (l.variation IS NOT NULL) AS spec, "
    # a copy made by ``learnings.inherit``: its original, and the scope level it came from
    "l.inherited_from, (SELECT CASE WHEN s.variation IS NOT NULL THEN 'variation' "
    "WHEN s.task IS NOT NULL THEN 'task' WHEN s.env IS NOT NULL THEN 'env' ELSE 'global' END "
    "FROM learnings s WHERE s.id = l.inherited_from) AS inherited_level"
)
_ORDER = "spec DESC, confidence = 'should' DESC, support DESC, last_seen DESC, id"


def recall(
    db: Database, scope: Scope, query: str | None = None, k: int | None = None
) -> list[Learning]:
    """Active learnings that apply to ``scope``, most specific and most relevant first.

    A learning applies when its scope equals ``scope`` or is broader (a NULL field means
    "any"): a variation's memory never leaks into a sibling variation or another task.
    Order: specificity, then BM25 relevance to ``query`` (matches before non-matches),
    then SHOULD before MAY, support, recency. Cost grows with the scope's own learnings,
    not with the file (see ``memory.ranking``).
    """
    union, params = ranking.candidates_sql(scope, _COLUMNS)
    if not (query and ranking.terms(query)):
        sql = f"SELECT * FROM ({union}) ORDER BY {_ORDER}"
        if k is not None:
            sql += " LIMIT ?"
            params = [*params, int(k)]
        return [Learning(**row) for row in db.rows(sql, params)]
    slim = db.conn.execute(
        f"SELECT id, spec, cause || ' ' || effect FROM ({union}) ORDER BY {_ORDER}", params
    ).fetchall()
    scores = ranking.bm25_scores(query, [r[2] for r in slim])
    ranked = sorted(range(len(slim)), key=lambda i: (-slim[i][1], -scores[i], i))
    if k is not None and int(k) >= 0:  # SQLite reads LIMIT -1 as "no limit"
        ranked = ranked[: int(k)]
    ids = [slim[i][0] for i in ranked]  # all from the scope's candidates above
    by_id: dict[int, dict[str, Any]] = {}
    for start in range(0, len(ids), 500):  # stay under SQLite's bound-variable limit
        part = ids[start : start + 500]
        marks = ", ".join("?" for _ in part)
        by_id.update((r["id"], r) for r in db.rows(
            f"SELECT {_COLUMNS} FROM learnings l WHERE l.id IN ({marks})", part))
    return [Learning(**by_id[i]) for i in ids]


def stored(
    db: Database, scope: Scope, *, include_retired: bool = False, limit: int | None = None
) -> list[Learning]:
    """Learnings stored at ``scope`` or any narrower scope (a ``None`` field of ``scope``
    matches every value there), ordered by scope then id."""
    where = ["l.namespace = ?", "l.agent = ?"]
    params: list[Any] = [scope.namespace, scope.agent]
    for field in ("env", "task", "variation"):
        value = getattr(scope, field)
        if value is not None:
            where.append(f"l.{field} = ?")
            params.append(value)
    if not include_retired:
        where.append("l.status = 'active'")
    sql = (f"SELECT {_COLUMNS} FROM learnings l WHERE {' AND '.join(where)} "
           "ORDER BY l.env IS NOT NULL, l.env, l.task IS NOT NULL, l.task, "
           "l.variation IS NOT NULL, l.variation, l.id")
    if limit is not None:
        sql += " LIMIT ?"
        params.append(max(0, int(limit)))
    return [Learning(**row) for row in db.rows(sql, params)]


def learning(db: Database, learning_id: int) -> Learning | None:
    """One learning by id, active or retired."""
    rows = db.rows(f"SELECT {_COLUMNS} FROM learnings l WHERE l.id = ?", [learning_id])
    return next((Learning(**r) for r in rows), None)


def history(db: Database, learning_id: int) -> list[dict[str, Any]]:
    """Every event of one learning, with its run and trial number (``v_learning_history``)."""
    return list(db.rows("SELECT * FROM v_learning_history WHERE learning_id = ?",
                        [learning_id]))


def fts_query(text: str, *, every_word: bool = False) -> str | None:
    """Turn free text into a safe FTS5 query: each word quoted, OR-ed (no operator injection);
    ``every_word``: AND-ed instead, as a search box means it.

    Only letters and digits survive, so quotes, ``*``, ``-``, ``:``, ``^`` and parentheses
    never reach FTS5, and ``OR``/``NEAR`` become quoted words; words are deduplicated
    (case-insensitively) and capped at 32 of at most 64 characters, so a pasted page cannot
    make one query arbitrarily expensive. ``recall`` itself does not use FTS5; this is for
    users who query ``learnings_fts`` themselves.
    """
    cleaned = "".join(c if c.isalnum() else " " for c in text[:10_000])
    words = list(dict.fromkeys(w[:64] for w in cleaned.lower().split() if len(w) > 1))
    if not words:
        return None
    return (" " if every_word else " OR ").join(f'"{w}"' for w in words[:32])
