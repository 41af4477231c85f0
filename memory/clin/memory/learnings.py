"""The only writer of ``learnings`` and ``learning_events``.

Three ways a learning arrives, one set of rules:

- :func:`merge_reflection`: a reflection is the *whole* updated memory of a scope. Kept
  learnings gain support; MAY is promoted to SHOULD once it has been kept ``PROMOTE_AFTER``
  times in trials averaging at least ``PROMOTE_MIN_MEAN_SCORE``; learnings the reflection
  dropped are demoted (SHOULD -> MAY) or retired (MAY).
- :func:`add_learning`: one sentence as it happens (an agent's tool call). It only adds,
  with support 0 until a reflection keeps it (support counts reflections, not tool calls):
  a known learning is left as it is, a retired one is revived.
- :func:`import_records`: JSON Lines from another memory; idempotent per (scope, key).

In all three an active learning with the opposite relation for the same cause and effect
is retired (:func:`retire_contradicted`). Nothing is deleted: every change has an event row,
so history is queryable.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any, Literal

from pydantic import BaseModel, Field, PrivateAttr, model_validator

from .abstractions import (
    FORMS_HELP,
    NOT_A_FORM,
    Abstraction,
    Confidence,
    ParseReport,
    Relation,
    parse_candidate,
)
from .db import insert, inserted_id, now
from .errors import MemoryStoreError
from .scope import Scope, level

PROMOTE_AFTER = 3  # support needed to promote MAY -> SHOULD
PROMOTE_MIN_MEAN_SCORE = 50.0
IMPORT_BATCH = 10_000

LearningStatus = Literal["active", "retired"]
LearningEvent = Literal["added", "kept", "promoted", "demoted", "retired", "revived", "imported",
                        "inherited"]


class Learning(BaseModel):
    """A stored abstraction as read back from the database."""

    id: int
    text: str
    cause: str
    effect: str
    relation: Relation
    confidence: Confidence
    support: int = 1
    mean_score: float | None = None
    env: str | None = None
    task: str | None = None
    variation: str | None = None
    status: LearningStatus = "active"
    first_trial_id: int | None = None
    last_trial_id: int | None = None
    inherited_from: int | None = None  # the broader scope's learning this is a copy of
    inherited_level: str | None = None  # that learning's scope level: task | env | global


# Where a learning came from, seen from a scope, in the order prompts show them: its own, other
# variations of the task, other tasks, another environment.
Origin = Literal["own", "task", "tasks", "envs"]
ORIGINS: tuple[Origin, ...] = ("own", "task", "tasks", "envs")


def origin(learning: Learning, scope: Scope) -> Origin:
    """Where ``learning`` came from, seen from ``scope``: its own, another variation of the
    same task (a task-level learning), other tasks (an environment-level one), or another
    environment (a global one, bound to no environment, seen from a scope in one: what a
    cross-environment eval's meta-memory holds). A copy made by ``Memory.inherit`` counts
    where its original was."""
    if learning.inherited_from is not None:
        at = learning.inherited_level or "global"
    else:
        at = level(learning.env, learning.task, learning.variation)
        if at == level(scope.env, scope.task, scope.variation):
            return "own"
    if at == "variation":
        return "own"
    if at == "global" and scope.env is not None:
        return "envs"
    return "task" if at == "task" else "tasks"


class ReflectionOutcome(BaseModel):
    """What one reflection did to the memory of a scope."""

    added: int = 0
    kept: int = 0
    promoted: int = 0
    demoted: int = 0
    retired: int = 0
    rejected: int = 0

    @property
    def written(self) -> int:
        return self.added + self.kept + self.promoted + self.demoted


class NotALearning(MemoryStoreError, ValueError):
    """The text is not one of the four causal forms; the message says what is accepted."""


class AddResult(BaseModel):
    """What ``add_learning`` did; ``text`` is the canonical sentence stored."""

    id: int
    text: str
    status: Literal["added", "known", "revived"]
    retired_ids: list[int] = []


class LearningRecord(BaseModel):
    """One learning as exported: where it applies, what it says, and how well it held up."""

    namespace: str = "default"
    agent: str = "clin"
    env: str | None = None
    task: str | None = None
    variation: str | None = None
    cause: str
    effect: str
    relation: Relation
    confidence: Confidence
    text: str = ""
    status: LearningStatus = "active"
    support: int = Field(default=1, ge=0)
    score_sum: float = 0.0
    mean_score: float | None = None
    first_seen: str | None = None
    last_seen: str | None = None

    _key: str = PrivateAttr(default="")

    @model_validator(mode="after")
    def _canonical_text(self) -> LearningRecord:
        """The sentence is re-derived from its parts, so a hand-edited file cannot store a
        text that says something other than its cause/relation/effect."""
        ab = self.abstraction
        self.text, self._key = ab.text, ab.key
        return self

    @property
    def abstraction(self) -> Abstraction:
        return Abstraction(
            cause=self.cause, effect=self.effect, relation=self.relation,
            confidence=self.confidence,
        )

    @property
    def key(self) -> str:
        """The dedup key (normalized cause|relation|effect) within its scope."""
        return self._key

    @property
    def scope(self) -> Scope:
        return Scope(namespace=self.namespace, agent=self.agent, env=self.env, task=self.task,
                     variation=self.variation)


def as_abstraction(learning: str | Abstraction) -> Abstraction:
    if isinstance(learning, Abstraction):
        return learning
    parsed = parse_candidate(learning) if "\n" not in learning.strip() else NOT_A_FORM
    if parsed == NOT_A_FORM:
        raise NotALearning(f"not a causal learning: {learning[:200]!r}; {FORMS_HELP}")
    if isinstance(parsed, str):
        raise NotALearning(f"not a useful learning ({parsed}): {learning[:200]!r}")
    return parsed


# ---------------------------------------------------------------------- rows and events
@dataclass
class Row:
    """The columns of a stored learning that merging needs."""

    id: int
    key: str
    status: str
    confidence: str
    support: int
    score_sum: float
    text: str
    cause: str
    effect: str
    relation: str

    @property
    def cause_effect(self) -> tuple[str, str]:
        cause, _, effect = self.key.split("|")
        return cause, effect


_ROW_COLUMNS = "id, key, status, confidence, support, score_sum, text, cause, effect, relation"


def _scope_rows(conn: sqlite3.Connection, scope: Scope, extra: str = "",
                params: Sequence[Any] = ()) -> list[Row]:
    where, scope_params = scope.exact_filter()
    return [
        Row(*r) for r in conn.execute(
            f"SELECT {_ROW_COLUMNS} FROM learnings WHERE {where}{extra} ORDER BY id",
            [*scope_params, *params],
        )
    ]


@dataclass(frozen=True)
class _Events:
    """Writes ``learning_events`` rows for one change set (one trial, one timestamp)."""

    conn: sqlite3.Connection
    trial_id: int | None
    score: float | None
    ts: str

    def __call__(self, learning_id: int, kind: LearningEvent, confidence: str,
                 text: str) -> None:
        insert(self.conn, "learning_events", {
            "learning_id": learning_id, "trial_id": self.trial_id, "event": kind,
            "confidence": confidence, "text": text, "score": self.score, "created_at": self.ts,
        })


def _insert_learning(conn: sqlite3.Connection, scope: Scope, ab: Abstraction, *,
                     support: int, score_sum: float, trial_id: int | None, ts: str) -> int:
    return insert(conn, "learnings", {
        **scope.model_dump(), "cause": ab.cause, "effect": ab.effect, "relation": ab.relation,
        "confidence": ab.confidence, "text": ab.text, "key": ab.key, "status": "active",
        "support": support, "score_sum": score_sum, "first_trial_id": trial_id,
        "last_trial_id": trial_id, "first_seen": ts, "last_seen": ts,
    })


def _retire(row: Row, event: _Events) -> None:
    event.conn.execute("UPDATE learnings SET status = 'retired' WHERE id = ?", [row.id])
    event(row.id, "retired", row.confidence, row.text)
    row.status = "retired"


def retire_contradicted(
    rows: Iterable[Row], asserted: dict[tuple[str, str], str], event: _Events
) -> list[int]:
    """Retire the active ``rows`` whose cause and effect were just asserted with the
    opposite relation; return their ids."""
    retired = []
    for row in rows:
        other = asserted.get(row.cause_effect)
        if row.status == "active" and other is not None and other != row.relation:
            _retire(row, event)
            retired.append(row.id)
    return retired


def _asserted(abstractions: Iterable[Abstraction]) -> dict[tuple[str, str], str]:
    out = {}
    for ab in abstractions:
        cause, _, effect = ab.key.split("|")
        out[(cause, effect)] = ab.relation
    return out


# ---------------------------------------------------------------------- reflection
def merge_reflection(
    conn: sqlite3.Connection,
    scope: Scope,
    report: ParseReport,
    *,
    trial_id: int | None = None,
    score: float | None = None,
) -> ReflectionOutcome:
    """Merge a reflection's abstractions into the scope's memory, inside the caller's
    transaction (see the module docstring for the rules)."""
    out = ReflectionOutcome(rejected=len(report.rejected))
    event = _Events(conn, trial_id, score, now())
    existing = {row.key: row for row in _scope_rows(conn, scope)}
    score_v = float(score) if score is not None else 0.0
    seen: set[int] = set()
    for ab in report.accepted:
        row = existing.get(ab.key)
        if row is None:
            lid = _insert_learning(conn, scope, ab, support=1, score_sum=score_v,
                                   trial_id=trial_id, ts=event.ts)
            existing[ab.key] = Row(lid, ab.key, "active", ab.confidence, 1, score_v, ab.text,
                                   ab.cause, ab.effect, ab.relation)
            seen.add(lid)
            event(lid, "added", ab.confidence, ab.text)
            out.added += 1
            continue
        if row.id in seen:
            continue
        seen.add(row.id)
        support = row.support + 1
        score_sum = (row.score_sum or 0.0) + score_v
        kind: LearningEvent
        new_conf = row.confidence
        if row.status != "active":
            kind, new_conf = "revived", ab.confidence
        elif ab.confidence == "should" and row.confidence == "may" or (
            row.confidence == "may"
            and support >= PROMOTE_AFTER
            and score_sum / support >= PROMOTE_MIN_MEAN_SCORE
        ):
            kind, new_conf = "promoted", "should"
        else:
            kind = "kept"
        text = Abstraction(
            cause=ab.cause, effect=ab.effect, relation=ab.relation, confidence=new_conf  # type: ignore[arg-type]
        ).text
        conn.execute(
            "UPDATE learnings SET status = 'active', support = ?, score_sum = ?, "
            "confidence = ?, text = ?, cause = ?, effect = ?, last_trial_id = ?, "
            "last_seen = ? WHERE id = ?",
            [support, score_sum, new_conf, text, ab.cause, ab.effect, trial_id, event.ts,
             row.id],
        )
        event(row.id, kind, new_conf, text)
        if kind == "promoted":
            out.promoted += 1
        else:
            out.kept += 1

    unseen = [row for row in existing.values() if row.id not in seen and row.status == "active"]
    out.retired += len(retire_contradicted(unseen, _asserted(report.accepted), event))
    if report.accepted:  # an empty reflection is a failure, not a verdict
        for row in unseen:
            if row.status != "active":  # retired as contradicted just above
                continue
            if row.confidence == "should":
                new_text = Abstraction(
                    cause=row.cause, effect=row.effect, relation=row.relation,  # type: ignore[arg-type]
                    confidence="may",
                ).text
                conn.execute("UPDATE learnings SET confidence = 'may', text = ? WHERE id = ?",
                             [new_text, row.id])
                event(row.id, "demoted", "may", new_text)
                out.demoted += 1
            else:
                _retire(row, event)
                out.retired += 1
    return out


def already_reflected(conn: sqlite3.Connection, trial_id: int) -> bool:
    """Whether a reflection on ``trial_id`` was merged (a second would count twice)."""
    return conn.execute("SELECT 1 FROM learning_events WHERE trial_id = ? LIMIT 1",
                        [trial_id]).fetchone() is not None


# ---------------------------------------------------------------------- one at a time
def add_learning(
    conn: sqlite3.Connection, scope: Scope, learning: str | Abstraction, *,
    trial_id: int | None = None,
) -> AddResult:
    """Add one learning inside the caller's transaction (see the module docstring)."""
    ab = as_abstraction(learning)
    if trial_id is not None and conn.execute(
            "SELECT 1 FROM trials WHERE id = ?", [trial_id]).fetchone() is None:
        raise MemoryStoreError(f"trial {trial_id} does not exist: pass the id record_trial "
                               "returned, or none")
    event = _Events(conn, trial_id, None, now())
    found = _scope_rows(conn, scope, " AND key = ?", [ab.key])
    row = found[0] if found else None
    if row is not None and row.status == "active":
        return AddResult(id=row.id, text=row.text, status="known")
    cause, _, effect = ab.key.split("|")
    other = "does-not-contribute" if ab.relation == "necessary" else "necessary"
    opposite = _scope_rows(conn, scope, " AND key = ? AND status = 'active'",
                           [f"{cause}|{other}|{effect}"])
    retired = retire_contradicted(opposite, _asserted([ab]), event)
    if row is not None:
        conn.execute(
            "UPDATE learnings SET status = 'active', confidence = ?, text = ?, "
            "last_seen = ? WHERE id = ?", [ab.confidence, ab.text, event.ts, row.id],
        )
        event(row.id, "revived", ab.confidence, ab.text)
        return AddResult(id=row.id, text=ab.text, status="revived", retired_ids=retired)
    lid = _insert_learning(conn, scope, ab, support=0, score_sum=0.0, trial_id=trial_id,
                           ts=event.ts)
    event(lid, "added", ab.confidence, ab.text)
    return AddResult(id=lid, text=ab.text, status="added", retired_ids=retired)


def retire(conn: sqlite3.Connection, learning_id: int) -> bool:
    """Retire one active learning by hand (a store's delete) inside the caller's transaction:
    the row stays, a "retired" event says when. False if it is not active (or unknown)."""
    found = conn.execute(f"SELECT {_ROW_COLUMNS} FROM learnings WHERE id = ?",
                         [learning_id]).fetchone()
    if found is None or found[2] != "active":
        return False
    _retire(Row(*found), _Events(conn, None, None, now()))
    return True


# ---------------------------------------------------------------------- JSON Lines import
_IMPORT = (
    "INSERT INTO learnings (namespace, agent, env, task, variation, cause, effect, relation, "
    "confidence, text, key, status, support, score_sum, first_seen, last_seen) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)


def import_batches(
    records: Iterable[LearningRecord | dict[str, Any]], batch: int = IMPORT_BATCH
) -> Iterable[list[tuple[Any, ...]]]:
    """Validate records into insert rows, ``batch`` at a time (a bad record raises before
    its batch is written)."""
    it = iter(records)
    while chunk := list(islice(it, batch)):
        ts = now()
        out = []
        for item in chunk:
            rec = item if isinstance(item, LearningRecord) else LearningRecord(**item)
            out.append((
                rec.namespace, rec.agent, rec.env, rec.task, rec.variation, rec.cause,
                rec.effect, rec.relation, rec.confidence, rec.text, rec.key,
                rec.status, rec.support, rec.score_sum, rec.first_seen or ts,
                rec.last_seen or ts,
            ))
        yield out


def import_rows(conn: sqlite3.Connection, rows: Sequence[tuple[Any, ...]]) -> int:
    """Insert one batch from :func:`import_batches` inside the caller's transaction;
    existing (scope, key) pairs are left untouched, each new row gets an ``imported``
    event. Returns the number of rows added."""
    before = conn.execute("SELECT ifnull(max(id), 0) FROM learnings").fetchone()[0]
    conn.executemany(_IMPORT, rows)
    cur = conn.execute(
        "INSERT INTO learning_events (learning_id, event, confidence, text, created_at) "
        "SELECT id, 'imported', confidence, text, ? FROM learnings WHERE id > ?",
        [now(), before],
    )
    return int(cur.rowcount)


# ---------------------------------------------------------------------- inheritance
_INHERITED = ("cause, effect, relation, confidence, text, key, support, score_sum, "
              "first_trial_id, last_trial_id, first_seen")


def inherit(conn: sqlite3.Connection, scope: Scope, sources: Iterable[Learning]) -> list[int]:
    """Copy ``sources`` (learnings of scopes broader than ``scope``) into ``scope`` with
    ``inherited_from`` set, so ``scope``'s own reflections keep, demote or retire the copy
    while the original, which other scopes see, never changes; recall shows the copy in
    place of the original (``ranking.candidates_sql``). A source whose key ``scope`` already
    holds is skipped. Returns the ids of the new copies, each with an ``inherited`` event."""
    event = _Events(conn, None, None, now())
    copies = []
    for src in sources:
        cur = conn.execute(
            f"INSERT OR IGNORE INTO learnings (namespace, agent, env, task, variation, "
            f"{_INHERITED}, status, last_seen, inherited_from) "
            f"SELECT ?, ?, ?, ?, ?, {_INHERITED}, 'active', ?, id FROM learnings WHERE id = ?",
            [scope.namespace, scope.agent, scope.env, scope.task, scope.variation, event.ts,
             src.id],
        )
        if cur.rowcount:
            copies.append(inserted_id(cur))
            event(copies[-1], "inherited", src.confidence, src.text)
    return copies


# ---------------------------------------------------------------------- reads for callers
def active_texts(conn: sqlite3.Connection, scope: Scope) -> list[str]:
    """The scope's own active learnings (exact scope), SHOULD first: what a reflection
    revises."""
    where, params = scope.exact_filter()
    return [r[0] for r in conn.execute(
        f"SELECT text FROM learnings WHERE {where} AND status = 'active' "
        "ORDER BY confidence = 'should' DESC, support DESC, id", params,
    )]


def ids_for_keys(conn: sqlite3.Connection, scope: Scope, keys: Sequence[str]) -> list[int]:
    """The ids of the learnings stored at exactly ``scope`` under ``keys``, in key order."""
    where, params = scope.exact_filter()
    ids: list[int] = []
    for key in keys:
        ids += [r[0] for r in conn.execute(f"SELECT id FROM learnings WHERE {where} AND key = ?",
                                           [*params, key])]
    return ids


WRITTEN_EVENTS: tuple[LearningEvent, ...] = ("added", "kept", "promoted", "revived")


def texts_written_by(conn: sqlite3.Connection, trial_id: int) -> list[str]:
    """The learnings the reflection on ``trial_id`` asserted (added, kept, promoted or
    revived), in first-occurrence order, without duplicates."""
    marks = ", ".join("?" for _ in WRITTEN_EVENTS)
    texts = [r[0] for r in conn.execute(
        f"SELECT text FROM learning_events WHERE trial_id = ? AND event IN ({marks}) "
        "ORDER BY id", [trial_id, *WRITTEN_EVENTS])]
    return list(dict.fromkeys(texts))


def seed_rows(conn: sqlite3.Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Insert whole ``learnings`` rows of another memory with their ids (``memory.transfer``);
    their links to that memory's trials are dropped."""
    for row in rows:
        insert(conn, "learnings", {**row, "first_trial_id": None, "last_trial_id": None})


def copy_rows(conn: sqlite3.Connection, learnings: Sequence[dict[str, Any]],
              events: Sequence[dict[str, Any]], trial_ids: dict[int, int]) -> dict[int, int]:
    """Insert learnings and events exported from another memory, with new ids and trial links
    translated; an event of a learning not among ``learnings`` keeps its learning id (it was
    seeded with it). Returns old -> new learning ids."""
    def trial(tid: int | None) -> int | None:
        return None if tid is None else trial_ids.get(tid, tid)

    ids = {r["id"]: insert(conn, "learnings", {
        **{k: v for k, v in r.items() if k != "id"},
        "first_trial_id": trial(r["first_trial_id"]), "last_trial_id": trial(r["last_trial_id"])})
        for r in learnings}
    for e in events:
        insert(conn, "learning_events", {
            **{k: v for k, v in e.items() if k != "id"},
            "learning_id": ids.get(e["learning_id"], e["learning_id"]),
            "trial_id": trial(e["trial_id"])})
    return ids
