"""The persistent memory: one SQLite file holding runs, trials, steps, LLM calls and learnings.

Safety contract:
- WAL journal, foreign keys on, a busy timeout, and every write in a short ``BEGIN IMMEDIATE``
  transaction, so concurrent writers queue instead of failing and a crash loses at most the
  write in flight.
- A trial is ``running`` until :meth:`Memory.finish_trial` commits its score, status and the
  learnings of its reflection in one transaction: a crash never leaves a trial looking complete.
- Nothing is deleted: dropped learnings are retired with an event row, so history is queryable.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

import sqlite_utils
from pydantic import BaseModel, Field
from typing_extensions import Self

from . import migrations, ranking
from .abstractions import Abstraction, ParseReport
from .errors import DatabaseError
from .scope import Scope

if TYPE_CHECKING:
    from .render import RenderedMemory

try:  # POSIX advisory lock so two processes never migrate the same file at once
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

BUSY_TIMEOUT_S = 60.0
PROMOTE_AFTER = 3  # support needed to promote MAY -> SHOULD
PROMOTE_MIN_MEAN_SCORE = 50.0


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class Learning(BaseModel):
    """A stored abstraction as read back from the database."""

    id: int
    text: str
    cause: str
    effect: str
    relation: str
    confidence: str
    support: int = 1
    mean_score: float | None = None
    env: str | None = None
    task: str | None = None
    variation: str | None = None
    status: str = "active"
    first_trial_id: int | None = None
    last_trial_id: int | None = None


# How an agent turned the LLM's proposal into the command it sent (see clin/executor.py):
# exact / normalized: a valid action verbatim or after normalization; constrained: chosen from
# an enum by a schema-enforcing backend; parser: sent unchanged and understood by the
# simulator's own parser; fuzzy: a close valid action with the same verb; reask: grounded
# after a re-ask; choice: the agent picked the option of an ambiguous request naming the
# proposal's objects; asked: the model picked it; verbatim: sent although not understood
# (re-asks spent); fallback: no usable answer, a harmless look; complete: the model ended.
GroundingKind = Literal["exact", "normalized", "constrained", "parser", "fuzzy", "reask",
                        "choice", "asked", "verbatim", "fallback", "complete"]
GROUNDING_KINDS: tuple[GroundingKind, ...] = get_args(GroundingKind)


class StepRecord(BaseModel):
    """One agent step as stored in ``steps``."""

    idx: int
    action: str
    observation: str = ""
    proposal: str | None = None
    grounding: GroundingKind | None = None
    rationale: str | None = None
    cited_learning_ids: list[int] = Field(default_factory=list)
    reward: float | None = None
    score: float | None = None
    done: bool = False
    llm_ms: float | None = None
    env_ms: float | None = None
    overhead_ms: float | None = None


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


class Memory:
    """A CLIN memory stored in one SQLite file (created if missing)."""

    def __init__(self, path: str | os.PathLike[str], *, create: bool = True) -> None:
        self.path = Path(path)
        if not create and not self.path.exists():
            raise DatabaseError(f"database {self.path} does not exist")
        self._check_writable()
        try:
            conn = sqlite3.connect(
                str(self.path), timeout=BUSY_TIMEOUT_S, isolation_level=None,
                check_same_thread=False,
            )
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            self.db = sqlite_utils.Database(conn)
            # Switching a new file to WAL and creating the schema take locks that two
            # processes opening the same new file at once can deadlock on (SQLite then
            # answers "locked" without waiting), so setup is serialized across processes.
            with self._setup_lock():
                conn.execute("PRAGMA journal_mode = WAL")
                self._migrate()
        except sqlite3.DatabaseError as exc:
            raise DatabaseError(_explain(self.path, exc)) from None
        self.conn = conn

    # ------------------------------------------------------------------ plumbing
    def _check_writable(self) -> None:
        if self.path.exists():
            if self.path.is_dir():
                raise DatabaseError(f"{self.path} is a directory, not a database file")
            if not os.access(self.path, os.W_OK):
                raise DatabaseError(
                    f"database {self.path} is read-only: make it writable or pass another --db"
                )
            with open(self.path, "rb") as fh:
                head = fh.read(16)
            if head and head != b"SQLite format 3\x00":
                raise DatabaseError(
                    f"{self.path} is not a SQLite database: pass another --db path "
                    "(the file was left untouched)"
                )
        elif not os.access(self.path.parent if str(self.path.parent) else ".", os.W_OK):
            raise DatabaseError(f"cannot create database {self.path}: directory is not writable")

    def _migrate(self) -> None:
        names = {fn.__name__ for fn in migrations.MIGRATIONS}
        if "_clin_migrations" in self.db.table_names():
            done = {r["name"] for r in self.db["_clin_migrations"].rows}
            if names <= done:
                return
        migrations.apply(self.db)

    @contextmanager
    def _setup_lock(self) -> Iterator[None]:
        """An exclusive advisory lock on ``<db>.lock`` held while opening is set up."""
        try:
            lock = open(str(self.path) + ".lock", "a")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise DatabaseError(
                f"cannot write beside {self.path} ({exc.strerror}): SQLite needs its directory "
                "writable for the WAL journal; pass another --db"
            ) from None
        with lock:
            if fcntl is not None:
                fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                if fcntl is not None:
                    fcntl.flock(lock, fcntl.LOCK_UN)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction taken up front (BEGIN IMMEDIATE), so it never fails half-way
        on a lock upgrade; waits up to the busy timeout for other writers."""
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise DatabaseError(_explain(self.path, exc)) from None
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        else:
            self.conn.execute("COMMIT")

    def _insert(self, conn: sqlite3.Connection, table: str, row: dict[str, Any]) -> int:
        cols = ", ".join(f"[{c}]" for c in row)
        marks = ", ".join("?" for _ in row)
        cur = conn.execute(f"INSERT INTO [{table}] ({cols}) VALUES ({marks})", list(row.values()))
        return int(cur.lastrowid)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ runs and trials
    def start_run(
        self,
        *,
        protocol: str = "custom",
        model: str | None = None,
        scope: Scope | None = None,
        trials_requested: int | None = None,
        config: dict[str, Any] | None = None,
    ) -> int:
        scope = scope or Scope()
        with self.transaction() as conn:
            return self._insert(
                conn,
                "runs",
                {
                    "started_at": now(),
                    "status": "running",
                    "protocol": protocol,
                    "model": model,
                    "namespace": scope.namespace,
                    "agent": scope.agent,
                    "env": scope.env,
                    "task": scope.task,
                    "variation": scope.variation,
                    "trials_requested": trials_requested,
                    "config": json.dumps(config or {}, sort_keys=True, default=str),
                },
            )

    def finish_run(self, run_id: int, status: str = "finished", error: str | None = None) -> None:
        with self.transaction() as conn:
            conn.execute(
                "UPDATE runs SET status = ?, finished_at = ?, error = ? WHERE id = ?",
                [status, now(), error, run_id],
            )

    def start_trial(self, run_id: int, idx: int, scope: Scope) -> int:
        with self.transaction() as conn:
            return self._insert(
                conn,
                "trials",
                {
                    "run_id": run_id,
                    "idx": idx,
                    "namespace": scope.namespace,
                    "agent": scope.agent,
                    "env": scope.env,
                    "task": scope.task,
                    "variation": scope.variation,
                    "status": "running",
                    "steps": 0,
                    "started_at": now(),
                },
            )

    def add_step(self, trial_id: int, step: StepRecord) -> int:
        row = step_row(trial_id, step, now())
        with self.transaction() as conn:
            step_id = self._insert(conn, "steps", row)
            conn.execute("UPDATE trials SET steps = ? WHERE id = ?", [step.idx, trial_id])
            return step_id

    def add_llm_call(
        self,
        *,
        purpose: str,
        model: str | None,
        prompt_tokens: int | None,
        completion_tokens: int | None,
        latency_ms: float | None,
        attempts: int = 1,
        run_id: int | None = None,
        trial_id: int | None = None,
        step_idx: int | None = None,
        prompt: str | None = None,
        response: str | None = None,
        error: str | None = None,
    ) -> int:
        with self.transaction() as conn:
            return self._insert(
                conn,
                "llm_calls",
                {
                    "run_id": run_id,
                    "trial_id": trial_id,
                    "step_idx": step_idx,
                    "purpose": purpose,
                    "model": model,
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "latency_ms": latency_ms,
                    "attempts": attempts,
                    "error": error,
                    "prompt": prompt,
                    "response": response,
                    "created_at": now(),
                },
            )

    def finish_trial(
        self,
        trial_id: int,
        *,
        score: float,
        completed: bool,
        stop_reason: str,
        reflection: ParseReport | None = None,
        scope: Scope | None = None,
    ) -> ReflectionOutcome:
        """Commit the trial's outcome and its reflection's learnings atomically."""
        outcome = ReflectionOutcome()
        with self.transaction() as conn:
            if reflection is not None:
                if scope is None:
                    raise ValueError("finish_trial needs the scope the learnings belong to")
                outcome = self._apply_reflection(conn, scope, trial_id, reflection, score)
            conn.execute(
                "UPDATE trials SET status = 'completed', score = ?, completed = ?, "
                "stop_reason = ?, learnings_written = ?, learnings_rejected = ?, "
                "finished_at = ? WHERE id = ?",
                [
                    score,
                    int(completed),
                    stop_reason,
                    outcome.written,
                    outcome.rejected,
                    now(),
                    trial_id,
                ],
            )
        return outcome

    def mark_trial(self, trial_id: int, status: str, stop_reason: str | None = None) -> None:
        """Mark a trial that did not finish (``interrupted`` / ``failed``)."""
        with self.transaction() as conn:
            conn.execute(
                "UPDATE trials SET status = ?, stop_reason = ?, finished_at = ? WHERE id = ?",
                [status, stop_reason, now(), trial_id],
            )

    def trials(self, run_id: int) -> list[dict[str, Any]]:
        return list(self.db.query("SELECT * FROM v_trial_scores WHERE run_id = ?", [run_id]))

    # ------------------------------------------------------------------ learnings
    def _apply_reflection(
        self,
        conn: sqlite3.Connection,
        scope: Scope,
        trial_id: int | None,
        report: ParseReport,
        score: float | None,
    ) -> ReflectionOutcome:
        """Merge a reflection's abstractions into the scope's memory.

        Kept learnings gain support; MAY is promoted to SHOULD once it has been kept
        ``PROMOTE_AFTER`` times in trials averaging at least ``PROMOTE_MIN_MEAN_SCORE``;
        learnings the reflection dropped are demoted (SHOULD -> MAY) or retired (MAY);
        a learning contradicted by the opposite relation is retired.
        """
        out = ReflectionOutcome(rejected=len(report.rejected))
        ts = now()
        where, params = scope.exact_filter()
        existing = {
            r[0]: r
            for r in conn.execute(
                "SELECT key, id, status, confidence, support, score_sum, text, cause, "
                f"effect, relation FROM learnings WHERE {where}",
                params,
            )
        }
        score_v = float(score) if score is not None else 0.0
        seen: set[int] = set()

        def event(lid: int, kind: str, conf: str, text: str) -> None:
            self._insert(
                conn,
                "learning_events",
                {
                    "learning_id": lid,
                    "trial_id": trial_id,
                    "event": kind,
                    "confidence": conf,
                    "text": text,
                    "score": score,
                    "created_at": ts,
                },
            )

        for ab in report.accepted:
            row = existing.get(ab.key)
            if row is None:
                lid = self._insert(
                    conn,
                    "learnings",
                    {
                        "namespace": scope.namespace,
                        "agent": scope.agent,
                        "env": scope.env,
                        "task": scope.task,
                        "variation": scope.variation,
                        "cause": ab.cause,
                        "effect": ab.effect,
                        "relation": ab.relation,
                        "confidence": ab.confidence,
                        "text": ab.text,
                        "key": ab.key,
                        "status": "active",
                        "support": 1,
                        "score_sum": score_v,
                        "first_trial_id": trial_id,
                        "last_trial_id": trial_id,
                        "first_seen": ts,
                        "last_seen": ts,
                    },
                )
                existing[ab.key] = (ab.key, lid, "active", ab.confidence, 1, score_v, ab.text,
                                    ab.cause, ab.effect, ab.relation)
                seen.add(lid)
                event(lid, "added", ab.confidence, ab.text)
                out.added += 1
                continue
            _, lid, status, conf, support, score_sum, *_ = row
            if lid in seen:
                continue
            seen.add(lid)
            support += 1
            score_sum = (score_sum or 0.0) + score_v
            new_conf = conf
            if status != "active":
                kind = "revived"
                new_conf = ab.confidence
            elif ab.confidence == "should" and conf == "may" or (
                conf == "may"
                and support >= PROMOTE_AFTER
                and score_sum / support >= PROMOTE_MIN_MEAN_SCORE
            ):
                kind, new_conf = "promoted", "should"
            else:
                kind = "kept"
            text = Abstraction(
                cause=ab.cause, effect=ab.effect, relation=ab.relation, confidence=new_conf
            ).text
            conn.execute(
                "UPDATE learnings SET status = 'active', support = ?, score_sum = ?, "
                "confidence = ?, text = ?, cause = ?, effect = ?, last_trial_id = ?, "
                "last_seen = ? WHERE id = ?",
                [support, score_sum, new_conf, text, ab.cause, ab.effect, trial_id, ts, lid],
            )
            event(lid, kind, new_conf, text)
            if kind == "promoted":
                out.promoted += 1
            else:
                out.kept += 1

        # Contradictions: same cause and effect, opposite relation, newly asserted.
        asserted = {(a.key.split("|")[0], a.key.split("|")[2]): a.relation for a in report.accepted}
        for key, lid, status, conf, _s, _ss, text, cause, effect, relation in list(
            existing.values()
        ):
            if lid in seen or status != "active":
                continue
            parts = key.split("|")
            other = asserted.get((parts[0], parts[2]))
            if other is not None and other != relation:
                conn.execute("UPDATE learnings SET status = 'retired' WHERE id = ?", [lid])
                event(lid, "retired", conf, text)
                out.retired += 1
            elif report.accepted:  # an empty reflection is a failure, not a verdict
                if conf == "should":
                    new_text = Abstraction(
                        cause=cause, effect=effect, relation=relation, confidence="may"
                    ).text
                    conn.execute(
                        "UPDATE learnings SET confidence = 'may', text = ? WHERE id = ?",
                        [new_text, lid],
                    )
                    event(lid, "demoted", "may", new_text)
                    out.demoted += 1
                else:
                    conn.execute("UPDATE learnings SET status = 'retired' WHERE id = ?", [lid])
                    event(lid, "retired", conf, text)
                    out.retired += 1
        return out

    def apply_reflection(
        self,
        scope: Scope,
        report: ParseReport,
        *,
        trial_id: int | None = None,
        score: float | None = None,
    ) -> ReflectionOutcome:
        """Merge parsed abstractions into ``scope`` (for agents that manage trials themselves)."""
        with self.transaction() as conn:
            return self._apply_reflection(conn, scope, trial_id, report, score)

    def recall(
        self, scope: Scope, query: str | None = None, k: int | None = None
    ) -> list[Learning]:
        """Active learnings that apply to ``scope``, most specific and most relevant first.

        A learning applies when its scope equals ``scope`` or is broader (a NULL field means
        "any"): a variation's memory never leaks into a sibling variation or another task.
        Order: specificity, then BM25 relevance to ``query`` (matches before non-matches),
        then SHOULD before MAY, support, recency. Cost grows with the scope's own learnings,
        not with the file (see ``memory.ranking``).
        """
        columns = (
            "l.id, l.text, l.cause, l.effect, l.relation, l.confidence, l.support, "
            "round(l.score_sum / max(l.support, 1), 2) AS mean_score, l.env, l.task, "
            "l.variation, l.status, l.first_trial_id, l.last_trial_id, l.last_seen, "
            "(l.env IS NOT NULL) + (l.task IS NOT NULL) + (l.variation IS NOT NULL) AS spec"
        )
        union, params = ranking.candidates_sql(scope, columns)
        order = "spec DESC, confidence = 'should' DESC, support DESC, last_seen DESC, id"
        if not (query and ranking.terms(query)):
            sql = f"SELECT * FROM ({union}) ORDER BY {order}"
            if k is not None:
                sql += " LIMIT ?"
                params = [*params, int(k)]
            return [Learning(**row) for row in self._rows(sql, params)]
        slim = self.conn.execute(
            f"SELECT id, spec, cause || ' ' || effect FROM ({union}) ORDER BY {order}", params
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
            by_id.update((r["id"], r) for r in self._rows(
                f"SELECT {columns} FROM learnings l WHERE l.id IN ({marks})", part))
        return [Learning(**by_id[i]) for i in ids]

    def _rows(self, sql: str, params: Sequence[Any]) -> Iterator[dict[str, Any]]:
        cur = self.conn.execute(sql, list(params))
        cols = [d[0] for d in cur.description]
        for values in cur:
            yield dict(zip(cols, values))

    def history(self, learning_id: int) -> list[dict[str, Any]]:
        return list(
            self._rows("SELECT * FROM v_learning_history WHERE learning_id = ?", [learning_id])
        )

    # ------------------------------------------------------------------ library API (issue 4)
    # Thin entry points for agents outside CLIN; the logic lives in record.py / reflect.py.
    def record_trial(
        self,
        scope: Scope,
        trace: Sequence[Any],
        score: float,
        *,
        completed: bool | None = None,
        stop_reason: str = "finished",
        run_id: int | None = None,
    ) -> int:
        """Store a finished attempt (``(action, observation)`` pairs or step mappings) and
        its 0..100 score in one transaction; return the trial id."""
        from .record import record_trial

        return record_trial(self, scope, trace, score, completed=completed,
                            stop_reason=stop_reason, run_id=run_id)

    def reflect(
        self,
        scope: Scope,
        llm: Any,
        *,
        trial_id: int | None = None,
        goal: str | None = None,
    ) -> ReflectionOutcome:
        """Let ``llm`` (a langchain-core chat model or a ``str -> str`` callable) turn a
        recorded trial (default: the scope's latest) into learnings merged into ``scope``."""
        from .reflect import reflect

        return reflect(self, scope, llm, trial_id=trial_id, goal=goal)

    def render(
        self,
        scope: Scope,
        query: str | None = None,
        *,
        budget_tokens: int | None = None,
        k: int | None = None,
    ) -> RenderedMemory:
        """``recall`` then ``memory.render``: a numbered prompt block within the budget."""
        from .render import render

        return render(self.recall(scope, query, k), budget_tokens)


def step_row(trial_id: int, step: StepRecord, created_at: str) -> dict[str, Any]:
    """A ``steps`` row for ``step`` (JSON for the cited ids, 0/1 for ``done``)."""
    row = step.model_dump()
    row["cited_learning_ids"] = json.dumps(row["cited_learning_ids"])
    row["done"] = int(row["done"])
    return {**row, "trial_id": trial_id, "created_at": created_at}


def fts_query(text: str) -> str | None:
    """Turn free text into a safe FTS5 query: each word quoted, OR-ed (no operator injection).

    Only letters and digits survive, so quotes, ``*``, ``-``, ``:``, ``^`` and parentheses
    never reach FTS5, and ``OR``/``NEAR`` become quoted words; words are deduplicated
    (case-insensitively) and capped at 32 of at most 64 characters, so a pasted page cannot
    make one query arbitrarily expensive. ``recall`` itself no longer uses FTS5.
    """
    cleaned = "".join(c if c.isalnum() else " " for c in text[:10_000])
    words = list(dict.fromkeys(w[:64] for w in cleaned.lower().split() if len(w) > 1))
    if not words:
        return None
    return " OR ".join(f'"{w}"' for w in words[:32])


def _explain(path: Path, exc: BaseException) -> str:
    msg = str(exc)
    if "file is not a database" in msg or "malformed" in msg:
        return f"{path} is not a usable SQLite database ({msg}): pass another --db path"
    if "readonly" in msg or "read-only" in msg:
        return f"database {path} is read-only: make it writable or pass another --db"
    if "locked" in msg:
        return f"database {path} stayed locked for {BUSY_TIMEOUT_S:.0f}s by another process"
    return f"database {path}: {msg}"
