"""The memory as LangGraph's long-term store (extra ``langgraph``): ``CLINStore(path)`` is a
``BaseStore``, so a graph compiled with ``store=CLINStore("agent.db")`` reads and writes
causal learnings with ``store.put / get / search / delete / list_namespaces`` (and their
async forms, which run the same sync core on a worker thread).

Namespaces are scopes, label by label: ``(namespace, agent, env, task, variation)``; a
shorter tuple leaves the rest unset, and ``"*"`` leaves env, task or variation unset ("any")
before a narrower label. Values hold one learning: ``{"text": "X SHOULD BE NECESSARY to Y"}``
(or under ``learning``, ``memory`` or ``content``); the sentence is parsed and stored as an
abstraction with the memory's rules, anything else is refused with the parser's reason.
Other fields of the value are kept with the item. ``search`` ranks with the memory's own
recall (what applies to the prefix's scope, its own and broader learnings) and then lists the
narrower scopes' learnings by relevance; learnings a reflection wrote show up too, under the
key ``learning:<id>``. ``delete`` retires the learning: nothing is deleted from the file.

Item keys live in the table ``langgraph_items`` of the same file, created by this module's
own migration (``Schema(owner="langgraph")``).
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlite_utils
from langgraph.store.base import (
    BaseStore,
    GetOp,
    InvalidNamespaceError,
    Item,
    ListNamespacesOp,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
)

from . import learnings, ranking
from .db import Schema, now
from .learnings import Learning
from .scope import Scope
from .store import Memory

FIELDS = ("namespace", "agent", "env", "task", "variation")
ANY = "*"
TEXT_KEYS = ("text", "learning", "memory", "content")
REFLECTED_KEY = re.compile(r"^learning:([1-9]\d{0,17})$")  # an id SQLite can hold
NOT_A_VALUE = ("CLINStore keeps causal learnings: put a value holding one under 'text', e.g. "
               "{'text': 'boiling water SHOULD BE NECESSARY to making tea'}")


def m001_items(db: sqlite_utils.Database) -> None:
    """The keys LangGraph gave learnings: (namespace path, key) -> learning, with the
    value's other fields (JSON) and the item's times."""
    db.table("langgraph_items").create(
        {"path": str, "key": str, "learning_id": int, "extra": str, "created_at": str,
         "updated_at": str},
        pk=("path", "key"), foreign_keys=[("learning_id", "learnings", "id")],
    )
    db.table("langgraph_items").create_index(["learning_id"])


SCHEMA = Schema(owner="langgraph", migrations=(m001_items,))


def to_scope(namespace: Sequence[str]) -> Scope:
    """The scope a LangGraph namespace names (see the module docstring)."""
    if len(namespace) > len(FIELDS):
        raise InvalidNamespaceError(
            f"a CLINStore namespace has at most {len(FIELDS)} labels "
            f"({', '.join(FIELDS)}), got {tuple(namespace)!r}")
    fields = dict(zip(FIELDS, namespace))
    for name in ("namespace", "agent"):
        if fields.get(name) == ANY:
            raise InvalidNamespaceError(f"the {name} label of a namespace cannot be {ANY!r}")
    return Scope.model_validate({k: (None if v == ANY else v) for k, v in fields.items()})


def path_of(learning: Learning | Scope, namespace: str, agent: str) -> tuple[str, ...]:
    """The canonical namespace of a scope: trailing unset fields dropped, inner ones ``*``."""
    labels = [namespace, agent, *(getattr(learning, f) for f in FIELDS[2:])]
    while labels and labels[-1] is None:
        labels.pop()
    return tuple(ANY if v is None else str(v) for v in labels)


def _stamp(text: str | None) -> datetime:
    return datetime.fromisoformat(text) if text else datetime.now(timezone.utc)


def _matches(value: dict[str, Any], flt: dict[str, Any] | None) -> bool:
    ops = {"$eq": lambda a, b: a == b, "$ne": lambda a, b: a != b,
           "$gt": lambda a, b: a is not None and a > b,
           "$gte": lambda a, b: a is not None and a >= b,
           "$lt": lambda a, b: a is not None and a < b,
           "$lte": lambda a, b: a is not None and a <= b}
    for field, want in (flt or {}).items():
        got = value.get(field)
        if isinstance(want, dict) and want and all(k in ops for k in want):
            if not all(ops[k](got, v) for k, v in want.items()):
                return False
        elif got != want:
            return False
    return True


def _glob(pattern: Sequence[str], labels: Sequence[str]) -> bool:
    return len(labels) >= len(pattern) and all(
        p == "*" or p == x for p, x in zip(pattern, labels))


class CLINStore(BaseStore):
    """A LangGraph ``BaseStore`` over one CLIN memory file (created if missing)."""

    supports_ttl = False

    def __init__(self, path: str | Path) -> None:
        self.memory = Memory(path, schemas=[SCHEMA])
        self._lock = threading.Lock()

    def close(self) -> None:
        self.memory.close()

    # ------------------------------------------------------------ the core
    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Run the operations in order; each put is one transaction."""
        with self._lock:
            return [self._one(op) for op in ops]

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        return await asyncio.to_thread(self.batch, list(ops))

    def _one(self, op: Op) -> Result:
        if isinstance(op, GetOp):
            return self._get(op.namespace, op.key)
        if isinstance(op, SearchOp):
            return self._search(op)
        if isinstance(op, PutOp):
            return self._put(op)
        if isinstance(op, ListNamespacesOp):
            return self._namespaces(op)
        raise TypeError(f"CLINStore cannot run {type(op).__name__}")

    # ------------------------------------------------------------ reading
    def _rows(self, learning_ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
        out: dict[int, list[dict[str, Any]]] = {}
        for start in range(0, len(learning_ids), 500):
            part = list(learning_ids[start : start + 500])
            marks = ", ".join("?" for _ in part)
            for r in self.memory.db.query(
                    f"SELECT * FROM langgraph_items WHERE learning_id IN ({marks}) "
                    "ORDER BY created_at, key", part):
                out.setdefault(r["learning_id"], []).append(r)
        return out

    @staticmethod
    def _value(lr: Learning, extra: str | None) -> dict[str, Any]:
        return {**json.loads(extra or "{}"), "text": lr.text, "relation": lr.relation,
                "confidence": lr.confidence, "support": lr.support, "status": lr.status,
                "learning_id": lr.id}

    def _get(self, namespace: tuple[str, ...], key: str) -> Item | None:
        scope = to_scope(namespace)
        row = self.memory.db.execute(
            "SELECT learning_id, extra, created_at, updated_at FROM langgraph_items "
            "WHERE path = ? AND key = ?", [json.dumps(list(namespace)), key]).fetchone()
        if row is not None:
            lr = self.memory.learning(row[0])
            if lr is None:
                return None
            return Item(value=self._value(lr, row[1]), key=key, namespace=namespace,
                        created_at=_stamp(row[2]), updated_at=_stamp(row[3]))
        m = REFLECTED_KEY.match(key)
        lr = self.memory.learning(int(m.group(1))) if m else None
        if lr is None or (lr.env, lr.task, lr.variation) != (scope.env, scope.task,
                                                             scope.variation):
            return None
        return Item(value=self._value(lr, None), key=key, namespace=namespace,
                    created_at=_stamp(None), updated_at=_stamp(None))

    def _items(self, found: Sequence[Learning], scope: Scope) -> list[SearchItem]:
        keyed = self._rows([x.id for x in found])
        items: list[SearchItem] = []
        for rank, lr in enumerate(found):
            score = 1.0 / (rank + 1)  # recall's order, as a number
            for r in keyed.get(lr.id, []):
                items.append(SearchItem(
                    namespace=tuple(json.loads(r["path"])), key=r["key"],
                    value=self._value(lr, r["extra"]), created_at=_stamp(r["created_at"]),
                    updated_at=_stamp(r["updated_at"]), score=score))
            if lr.id not in keyed:
                items.append(SearchItem(
                    namespace=path_of(lr, scope.namespace, scope.agent),
                    key=f"learning:{lr.id}", value=self._value(lr, None),
                    created_at=_stamp(None), updated_at=_stamp(None), score=score))
        return items

    def _search(self, op: SearchOp) -> list[SearchItem]:
        scope = to_scope(op.namespace_prefix)
        applies = self.memory.recall(scope, op.query)
        seen = {x.id for x in applies}
        narrower = [x for s in self._under(op.namespace_prefix) for x in self.memory.learnings(s)
                    if x.id not in seen]
        if op.query and narrower:
            scores = ranking.bm25_scores(op.query, [f"{x.cause} {x.effect}" for x in narrower])
            order = sorted(range(len(narrower)), key=lambda i: (-scores[i], i))
            narrower = [narrower[i] for i in order]
        items = [it for it in self._items([*applies, *narrower], scope)
                 if _matches(it.value, op.filter)]
        return items[op.offset : op.offset + op.limit]

    def _under(self, prefix: Sequence[str]) -> list[Scope]:
        """The scopes a prefix covers: itself, or with fewer than two labels every agent
        (and with none every namespace) that holds learnings."""
        if len(prefix) >= 2:
            return [to_scope(prefix)]
        sql = "SELECT DISTINCT namespace, agent FROM learnings"
        rows = self.memory.db.execute(sql + (" WHERE namespace = ?" if prefix else ""),
                                        list(prefix[:1])).fetchall()
        return [Scope(namespace=ns, agent=agent) for ns, agent in rows]

    def _namespaces(self, op: ListNamespacesOp) -> list[tuple[str, ...]]:
        paths: set[tuple[str, ...]] = {
            tuple(json.loads(r[0])) for r in self.memory.db.execute(
                "SELECT DISTINCT i.path FROM langgraph_items i JOIN learnings l "
                "ON l.id = i.learning_id WHERE l.status = 'active'")}
        for ns, agent, env, task, variation in self.memory.db.execute(
                "SELECT DISTINCT namespace, agent, env, task, variation FROM learnings "
                "WHERE status = 'active' AND id NOT IN (SELECT learning_id FROM langgraph_items)"):
            scope = Scope(namespace=ns, agent=agent, env=env, task=task, variation=variation)
            paths.add(path_of(scope, ns, agent))
        out = set()
        for p in paths:
            ok = True
            for cond in op.match_conditions or ():
                labels = p if cond.match_type == "prefix" else tuple(reversed(p))
                pattern = cond.path if cond.match_type == "prefix" else tuple(
                    reversed(cond.path))
                ok = ok and _glob(pattern, labels)
            if ok:
                out.add(p[: op.max_depth] if op.max_depth is not None else p)
        return sorted(out)[op.offset : op.offset + op.limit]

    # ------------------------------------------------------------ writing
    def _put(self, op: PutOp) -> None:
        path = json.dumps(list(op.namespace))
        scope = to_scope(op.namespace)
        if op.value is None:
            with self.memory.transaction() as conn:
                self._drop(conn, path, op.key, scope)
            return
        value = op.value if isinstance(op.value, dict) else {}  # a bare string too: refused
        text = next((value[k] for k in TEXT_KEYS if isinstance(value.get(k), str)), None)
        if text is None:
            raise ValueError(NOT_A_VALUE)
        extra = json.dumps({k: v for k, v in value.items() if k not in TEXT_KEYS},
                           default=str)
        with self.memory.transaction() as conn:
            added = learnings.add_learning(conn, scope, text)  # NotALearning: the reason
            ts = now()
            old = conn.execute("SELECT learning_id, created_at FROM langgraph_items "
                               "WHERE path = ? AND key = ?", [path, op.key]).fetchone()
            conn.execute(
                "INSERT OR REPLACE INTO langgraph_items (path, key, learning_id, extra, "
                "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                [path, op.key, added.id, extra, old[1] if old else ts, ts])
            if old is not None and old[0] != added.id:
                self._retire_unkeyed(conn, old[0])

    def _drop(self, conn: Any, path: str, key: str, scope: Scope) -> None:
        old = conn.execute("SELECT learning_id FROM langgraph_items WHERE path = ? AND key = ?",
                           [path, key]).fetchone()
        if old is not None:
            conn.execute("DELETE FROM langgraph_items WHERE path = ? AND key = ?", [path, key])
            self._retire_unkeyed(conn, old[0])
            return
        m = REFLECTED_KEY.match(key)
        if m:
            where, params = scope.exact_filter()
            if conn.execute(f"SELECT 1 FROM learnings WHERE id = ? AND {where}",
                            [int(m.group(1)), *params]).fetchone():
                self._retire_unkeyed(conn, int(m.group(1)))

    @staticmethod
    def _retire_unkeyed(conn: Any, learning_id: int) -> None:
        """A learning no key names any more leaves the memory (retired, with an event)."""
        if conn.execute("SELECT 1 FROM langgraph_items WHERE learning_id = ?",
                        [learning_id]).fetchone() is None:
            learnings.retire(conn, learning_id)
