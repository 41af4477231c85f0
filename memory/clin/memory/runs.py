"""The only writer of ``runs``, ``trials``, ``steps`` and ``llm_calls``: the lifecycle of an
attempt.

A trial is ``running`` until :func:`complete_trial` writes its score and status in the
caller's final transaction (the facade commits the reflection's learnings in the same one),
so a crash never leaves a trial looking complete. Trials that never got there are closed by
:func:`close_unfinished_trials`, the one place that does it.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Sequence
from typing import Any, Literal

from .db import Database, insert, now, rows
from .record import StepRecord, TraceItem, as_steps
from .scope import Scope

RunStatus = Literal["running", "finished", "failed", "interrupted"]
TrialStatus = Literal["running", "completed", "interrupted", "failed"]
StopStatus = Literal["interrupted", "failed"]  # how a run or trial that did not finish ends
LIBRARY_PROTOCOL = "library"


def finite_score(score: float) -> float:
    """``score`` as a float; NaN and infinities are refused (they would poison every mean,
    and SQLite stores NaN as NULL)."""
    try:
        value = float(score)
    except (TypeError, ValueError):
        raise ValueError(f"score must be a number, got {score!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"score must be a finite number (0..100), got {value}")
    return value


def step_row(trial_id: int, step: StepRecord, created_at: str) -> dict[str, Any]:
    """A ``steps`` row for ``step`` (JSON for the cited ids, 0/1 for ``done``)."""
    row = step.model_dump()
    row["cited_learning_ids"] = json.dumps(row["cited_learning_ids"])
    row["done"] = int(row["done"])
    return {**row, "trial_id": trial_id, "created_at": created_at}


def _scope_columns(scope: Scope) -> dict[str, Any]:
    return scope.model_dump()


# ---------------------------------------------------------------------- runs
def start_run(
    db: Database,
    *,
    protocol: str = "custom",
    model: str | None = None,
    scope: Scope | None = None,
    trials_requested: int | None = None,
    config: dict[str, Any] | None = None,
) -> int:
    with db.transaction() as conn:
        return insert(conn, "runs", {
            "started_at": now(), "status": "running", "protocol": protocol, "model": model,
            **_scope_columns(scope or Scope()), "trials_requested": trials_requested,
            "config": json.dumps(config or {}, sort_keys=True, default=str),
        })


def finish_run(conn: sqlite3.Connection, run_id: int, status: RunStatus = "finished",
               error: str | None = None) -> None:
    conn.execute(
        "UPDATE runs SET status = ?, finished_at = ?, error = ? WHERE id = ?",
        [status, now(), error, run_id],
    )


def reopen_run(db: Database, run_id: int, trials_requested: int) -> int:
    """Mark the run running again and its unfinished trials interrupted; return how many
    trials completed (they are not re-run)."""
    with db.transaction() as conn:
        close_unfinished_trials(conn, run_id, "interrupted", "resumed")
        conn.execute(
            "UPDATE runs SET status = 'running', finished_at = NULL, error = NULL, "
            "trials_requested = ? WHERE id = ?",
            [trials_requested, run_id],
        )
        (done,) = conn.execute(
            "SELECT count(*) FROM trials WHERE run_id = ? AND status = 'completed'", [run_id]
        ).fetchone()
    return int(done)


def latest_unfinished_run(db: Database, scope: Scope, protocol: str) -> int | None:
    """The latest run of ``protocol`` stored at exactly ``scope`` that did not finish."""
    where, params = scope.exact_filter()
    row = db.conn.execute(
        f"SELECT id FROM runs WHERE protocol = ? AND status != 'finished' AND {where} "
        "ORDER BY id DESC LIMIT 1",
        [protocol, *params],
    ).fetchone()
    return None if row is None else int(row[0])


# ---------------------------------------------------------------------- trials
def start_trial(db: Database, run_id: int, idx: int, scope: Scope) -> int:
    with db.transaction() as conn:
        return insert(conn, "trials", {
            "run_id": run_id, "idx": idx, **_scope_columns(scope), "status": "running",
            "steps": 0, "started_at": now(),
        })


def add_step(db: Database, trial_id: int, step: StepRecord) -> int:
    row = step_row(trial_id, step, now())
    with db.transaction() as conn:
        step_id = insert(conn, "steps", row)
        conn.execute("UPDATE trials SET steps = ? WHERE id = ?", [step.idx, trial_id])
        return step_id


def add_llm_call(db: Database, **fields: Any) -> int:
    """One ``llm_calls`` row; ``fields`` are its columns (``created_at`` is added)."""
    with db.transaction() as conn:
        return insert(conn, "llm_calls", {**fields, "created_at": now()})


def llm_call_tokens(db: Database, call_ids: Sequence[int]) -> int:
    """Prompt plus completion tokens of the given ``llm_calls`` rows."""
    total = 0
    for start in range(0, len(call_ids), 500):  # stay under SQLite's bound-variable limit
        part = list(call_ids[start : start + 500])
        marks = ", ".join("?" for _ in part)
        total += db.conn.execute(
            "SELECT ifnull(sum(prompt_tokens), 0) + ifnull(sum(completion_tokens), 0) "
            f"FROM llm_calls WHERE id IN ({marks})", part).fetchone()[0]
    return int(total)


def complete_trial(
    conn: sqlite3.Connection,
    trial_id: int,
    *,
    score: float,
    completed: bool,
    stop_reason: str,
    written: int = 0,
    rejected: int = 0,
) -> None:
    """Write the trial's outcome inside the caller's (final) transaction."""
    conn.execute(
        "UPDATE trials SET status = 'completed', score = ?, completed = ?, stop_reason = ?, "
        "learnings_written = ?, learnings_rejected = ?, finished_at = ? WHERE id = ?",
        [finite_score(score), int(completed), stop_reason, written, rejected, now(), trial_id],
    )


def count_reflection(conn: sqlite3.Connection, trial_id: int, written: int,
                     rejected: int) -> None:
    """Add a later reflection's counts to its trial."""
    conn.execute(
        "UPDATE trials SET learnings_written = ifnull(learnings_written, 0) + ?, "
        "learnings_rejected = ifnull(learnings_rejected, 0) + ? WHERE id = ?",
        [written, rejected, trial_id],
    )


def mark_trial(conn: sqlite3.Connection, trial_id: int, status: TrialStatus,
               stop_reason: str | None = None) -> None:
    conn.execute(
        "UPDATE trials SET status = ?, stop_reason = ?, finished_at = ? WHERE id = ?",
        [status, stop_reason, now(), trial_id],
    )


def close_unfinished_trials(conn: sqlite3.Connection, run_id: int, status: StopStatus,
                            stop_reason: str | None = None) -> int:
    """Mark the trials of ``run_id`` left ``running`` (a crash, Ctrl-C, a killed worker) as
    ``status`` so they never count; return how many. The only place that does this."""
    cur = conn.execute(
        "UPDATE trials SET status = ?, stop_reason = ?, finished_at = ? "
        "WHERE run_id = ? AND status = 'running'",
        [status, stop_reason or status, now(), run_id],
    )
    return int(cur.rowcount)


def completed_trials(db: Database, run_id: int) -> list[dict[str, Any]]:
    """The completed trials of a run, one per index (the first that completed):
    ``idx``, ``id``, ``score``."""
    return list(db.rows(
        "SELECT idx, min(id) AS id, score FROM trials WHERE run_id = ? AND status = 'completed' "
        "GROUP BY idx ORDER BY idx",
        [run_id],
    ))


def best_trial(db: Database, run_id: int) -> dict[str, Any] | None:
    """The run's best completed trial (ties: the later): ``id``, ``idx``, ``score``."""
    return next(db.rows(
        "SELECT id, idx, score FROM trials WHERE run_id = ? AND status = 'completed' "
        "ORDER BY score DESC, idx DESC LIMIT 1", [run_id]), None)


def trial_counts(db: Database, run_ids: Sequence[int]) -> tuple[int, list[dict[str, Any]]]:
    """(completed trials of ``run_ids``, the running ones with ``run_id``, ``idx``,
    ``steps``): what a progress display shows."""
    done, running = 0, []
    for start in range(0, len(run_ids), 500):  # stay under SQLite's bound-variable limit
        part = list(run_ids[start : start + 500])
        marks = ", ".join("?" for _ in part)
        done += db.conn.execute(
            f"SELECT count(*) FROM trials WHERE run_id IN ({marks}) AND status = 'completed'",
            part).fetchone()[0]
        running += list(db.rows(
            f"SELECT id, run_id, idx, steps FROM trials WHERE run_id IN ({marks}) "
            "AND status = 'running' ORDER BY id", part))
    running.sort(key=lambda r: r["id"])
    return int(done), running


def scored_trial(conn: sqlite3.Connection, scope: Scope,
                 trial_id: int | None) -> tuple[int, float | None] | None:
    """(id, score) of ``trial_id`` if it is stored at ``scope``, or of the scope's latest
    completed trial when ``trial_id`` is None; None when there is no such trial."""
    where, params = scope.exact_filter()
    if trial_id is None:
        row = conn.execute(
            f"SELECT id, score FROM trials WHERE {where} AND status = 'completed' "
            "ORDER BY id DESC LIMIT 1", params,
        ).fetchone()
    else:
        row = conn.execute(
            f"SELECT id, score FROM trials WHERE id = ? AND {where}", [trial_id, *params]
        ).fetchone()
    return None if row is None else (int(row[0]), row[1])


def trial_steps(conn: sqlite3.Connection, trial_id: int) -> list[dict[str, Any]]:
    """``idx``, ``action``, ``observation``, ``reward``, ``score`` of each step, in order."""
    return list(rows(conn, "SELECT idx, action, observation, reward, score FROM steps "
                           "WHERE trial_id = ? ORDER BY idx", [trial_id]))


def earlier_trials(conn: sqlite3.Connection, scope: Scope, before_id: int,
                   n: int) -> list[dict[str, Any]]:
    """``id``, ``idx``, ``score`` of the last ``n`` completed trials stored at exactly
    ``scope`` before trial ``before_id``, oldest first (what a reflection compares with)."""
    where, params = scope.exact_filter()
    found = list(rows(conn, f"SELECT id, idx, score FROM trials WHERE {where} AND id < ? "
                            "AND status = 'completed' ORDER BY id DESC LIMIT ?",
                      [*params, before_id, n]))
    return found[::-1]


# ---------------------------------------------------------------------- library API
def _library_run(conn: sqlite3.Connection, scope: Scope) -> int:
    """Agents outside CLIN do not manage runs: their attempts go under one ``library`` run
    per scope, so ``v_trial_scores`` numbers them 1, 2, 3 ... like CLIN's own."""
    where, params = scope.exact_filter()
    row = conn.execute(
        f"SELECT id FROM runs WHERE protocol = ? AND {where} ORDER BY id DESC LIMIT 1",
        [LIBRARY_PROTOCOL, *params],
    ).fetchone()
    if row is not None:
        return int(row[0])
    return insert(conn, "runs", {
        "started_at": now(), "status": "finished", "protocol": LIBRARY_PROTOCOL,
        **_scope_columns(scope), "config": "{}",
    })


def record_trial(
    db: Database,
    scope: Scope,
    trace: Sequence[TraceItem],
    score: float,
    *,
    completed: bool | None = None,
    stop_reason: str = "finished",
    run_id: int | None = None,
) -> int:
    """Store one finished attempt atomically and return its ``trials.id``.

    ``score`` is on CLIN's 0..100 scale (promotion of MAY to SHOULD assumes it).
    """
    score = finite_score(score)
    steps = as_steps(trace)
    ts = now()
    with db.transaction() as conn:
        run = run_id if run_id is not None else _library_run(conn, scope)
        if not conn.execute("SELECT 1 FROM runs WHERE id = ?", [run]).fetchone():
            raise ValueError(f"run {run} does not exist: pass a run id from start_run or none")
        idx = conn.execute(
            "SELECT ifnull(max(idx), 0) + 1 FROM trials WHERE run_id = ?", [run]
        ).fetchone()[0]
        trial_id = insert(conn, "trials", {
            "run_id": run, "idx": idx, **_scope_columns(scope), "status": "completed",
            "score": score, "steps": len(steps),
            "completed": None if completed is None else int(completed),
            "stop_reason": stop_reason, "learnings_written": 0, "learnings_rejected": 0,
            "started_at": ts, "finished_at": ts,
        })
        for step in steps:
            insert(conn, "steps", step_row(trial_id, step, ts))
        if run_id is None:
            conn.execute("UPDATE runs SET finished_at = ? WHERE id = ?", [ts, run])
    return trial_id


def copy_run(conn: sqlite3.Connection, run: dict[str, Any], trials: Sequence[dict[str, Any]],
             config: dict[str, Any] | None = None) -> tuple[int, dict[int, int]]:
    """Insert a run and its trials exported from another memory (``memory.transfer``); new
    ids, ``config`` merged into the run's. Returns (new run id, old -> new trial ids)."""
    merged = {**json.loads(run.get("config") or "{}"), **(config or {})}
    run_id = insert(conn, "runs", {**_without_id(run),
                                   "config": json.dumps(merged, sort_keys=True, default=str)})
    trial_ids = {t["id"]: insert(conn, "trials", {**_without_id(t), "run_id": run_id})
                 for t in trials}
    return run_id, trial_ids


def copy_steps_and_calls(conn: sqlite3.Connection, steps: Sequence[dict[str, Any]],
                         calls: Sequence[dict[str, Any]], run_ids: dict[int, int],
                         trial_ids: dict[int, int], learning_ids: dict[int, int]) -> None:
    """Insert steps and LLM calls exported from another memory, their links translated
    (a cited learning not in ``learning_ids`` keeps its id: it was seeded with it)."""
    for s in steps:
        cited = [learning_ids.get(i, i) for i in json.loads(s["cited_learning_ids"] or "[]")]
        insert(conn, "steps", {**_without_id(s), "trial_id": trial_ids[s["trial_id"]],
                               "cited_learning_ids": json.dumps(cited)})
    for c in calls:
        insert(conn, "llm_calls", {
            **_without_id(c),
            "run_id": None if c["run_id"] is None else run_ids[c["run_id"]],
            "trial_id": None if c["trial_id"] is None else trial_ids[c["trial_id"]]})


def _without_id(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != "id"}
