"""How ``Memory.recall`` finds and orders a scope's learnings without touching other scopes.

Two choices, both made so recall stays fast when the file holds millions of learnings:

- Candidates are read through the unique index on
  ``(namespace, agent, ifnull(env,''), ifnull(task,''), ifnull(variation,''), key)``, one
  exact lookup per ancestor scope (at most eight), instead of ``task = ? OR task IS NULL``
  filters that SQLite can only answer by scanning the whole namespace.
- Relevance is BM25 computed over those candidates in Python. FTS5's ``bm25()`` counts every
  matching row in the whole table for each query term (its IDF), so its cost grows with the
  file, not with the scope: a word such as "plant" can match a hundred thousand rows of other
  scopes. The candidates of one scope are a few hundred rows at most in practice.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from functools import lru_cache
from itertools import product
from typing import Any

from .scope import Scope, scope_filter

_WORD = re.compile(r"[^\W_]+")
# Articles and the words of the four causal forms match every learning: they carry no signal.
STOPWORDS = frozenset({
    "a", "an", "the", "to", "of", "in", "on", "into", "at", "for", "with", "and", "or", "some",
    "any", "is", "are", "be", "by", "it", "its", "this", "that", "should", "may", "must", "not",
    "does", "do", "necessary", "contribute",
})
K1 = 1.2
B = 0.75


@lru_cache(maxsize=1 << 16)
def stem(word: str) -> str:
    """A light suffix stripper ('watering' -> 'water', 'plants' -> 'plant'), enough to match
    the inflections agents write; not a full Porter stemmer."""
    w = word
    if len(w) > 5 and w.endswith("ing"):
        w = w[:-3]
        if len(w) > 3 and w[-1] == w[-2] and w[-1] not in "aeiouls":
            w = w[:-1]
    elif len(w) > 4 and w.endswith(("ied", "ies")):
        w = w[:-3] + "y"
    elif len(w) > 4 and w.endswith("ed"):
        w = w[:-2]
        if len(w) > 3 and w[-1] == w[-2] and w[-1] not in "aeiouls":
            w = w[:-1]
    elif len(w) > 3 and w.endswith("s") and not w.endswith("ss"):
        w = w[:-1]
    if len(w) > 3 and w.endswith("e"):
        w = w[:-1]
    return w


@lru_cache(maxsize=1 << 16)
def terms(text: str) -> tuple[str, ...]:
    """Lower-cased, stemmed content words of ``text`` (no stop words, no punctuation).
    Cached: the same learnings are ranked again on every recall of their scope."""
    return tuple(
        stem(w) for w in _WORD.findall(text.lower()) if w not in STOPWORDS and len(w) > 1
    )


def bm25_scores(query: str, docs: Sequence[str]) -> list[float]:
    """BM25 score of each doc for ``query``, IDF taken over ``docs``; 0.0 means no match."""
    q = set(terms(query))
    if not q or not docs:
        return [0.0] * len(docs)
    bags = [terms(d) for d in docs]
    n = len(bags)
    avgdl = sum(map(len, bags)) / n or 1.0
    df = {t: sum(1 for b in bags if t in b) for t in q}
    idf = {t: math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5)) for t in q if df[t]}
    scores = []
    for bag in bags:
        s = 0.0
        for t, w in idf.items():
            tf = bag.count(t)
            if tf:
                s += w * tf * (K1 + 1) / (tf + K1 * (1 - B + B * len(bag) / avgdl))
        scores.append(s)
    return scores


def ancestor_keys(scope: Scope) -> list[tuple[str, str, str]]:
    """The (env, task, variation) values, as stored in the scope index (NULL -> ''), of
    ``scope`` and every scope broader than it: each set field may also be NULL."""
    options = [("",) if v is None else (v, "") for v in (scope.env, scope.task, scope.variation)]
    return list(dict.fromkeys(product(*options)))  # type: ignore[return-value]  # 3 factors


def candidates_sql(scope: Scope, columns: str, alias: str = "l") -> tuple[str, list[Any]]:
    """A UNION ALL of indexed lookups, one per ancestor scope, of active learnings.

    A learning copied into the scope or one of its ancestors (``inherited_from``, see
    ``learnings.inherit``) is left out: the copy, revised by that scope's reflections, stands in
    for it, even once the copy is retired.

    ``scope_filter`` is kept on every branch as the exact rule (the ``ifnull`` lookup alone
    would confuse an empty string with NULL), so no row outside the scope's ancestry can
    appear whatever the names contain; names only ever travel as bound parameters.
    """
    exact, exact_params = scope_filter(scope, alias)
    in_scope, in_scope_params = scope_filter(scope, "c")
    shadowed = (f"NOT EXISTS (SELECT 1 FROM learnings c WHERE c.inherited_from = {alias}.id "
                f"AND {in_scope})")
    branches: list[str] = []
    params: list[Any] = []
    for env, task, variation in ancestor_keys(scope):
        branches.append(
            f"SELECT {columns} FROM learnings {alias} INDEXED BY idx_learnings_scope_key "
            f"WHERE {alias}.namespace = ? AND {alias}.agent = ? "
            f"AND ifnull({alias}.env, '') = ? AND ifnull({alias}.task, '') = ? "
            f"AND ifnull({alias}.variation, '') = ? AND {alias}.status = 'active' AND {exact} "
            f"AND {shadowed}"
        )
        params += [scope.namespace, scope.agent, env, task, variation, *exact_params,
                   *in_scope_params]
    return " UNION ALL ".join(branches), params
