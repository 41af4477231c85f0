"""Reads and writes of the eval tables (``evals``, ``eval_episodes``, ``meta_*``).

Every write is one short ``BEGIN IMMEDIATE`` transaction through :meth:`Memory.transaction`,
so worker processes sharing the file queue on the busy timeout instead of failing.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from clin.memory import Memory
from clin.memory.db import inserted_id, now
from clin.memory.runs import StopStatus

from .protocols import EpisodePlan, EvalConfig


class EvalRow(BaseModel):
    id: int
    protocol: str
    status: str
    namespace: str
    model: str | None
    config: EvalConfig


class EpisodeRow(EpisodePlan):
    """A planned episode as stored, with how far it got (its scope: ``EpisodePlan.scope``)."""

    id: int
    eval_id: int
    run_id: int | None
    status: str
    gold_steps: int | None = None
    max_steps: int | None = None


def _rows(mem: Memory, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    return list(mem.db.query(sql, params or []))


def create_eval(mem: Memory, cfg: EvalConfig, namespace: str | None = None) -> EvalRow:
    """Insert an eval; its namespace defaults to ``eval-<id>`` so evals never share memory."""
    with mem.transaction() as conn:
        cur = conn.execute(
            "INSERT INTO evals (protocol, status, namespace, model, config, started_at) "
            "VALUES (?, 'running', '', ?, ?, ?)",
            [cfg.protocol, cfg.model, cfg.model_dump_json(), now()],
        )
        eval_id = inserted_id(cur)
        ns = namespace or f"eval-{eval_id}"
        conn.execute("UPDATE evals SET namespace = ? WHERE id = ?", [ns, eval_id])
    return get_eval(mem, eval_id)


def get_eval(mem: Memory, eval_id: int) -> EvalRow:
    rows = _rows(mem, "SELECT * FROM evals WHERE id = ?", [eval_id])
    if not rows:
        raise LookupError(f"no eval {eval_id}")
    r = rows[0]
    stored = json.loads(r["config"])
    # Evals stored before BASE and step budgets existed resume as they were planned.
    stored.setdefault("step_budget", "fixed")
    stored.setdefault("base", False)
    return EvalRow(id=r["id"], protocol=r["protocol"], status=r["status"],
                   namespace=r["namespace"], model=r["model"], config=EvalConfig(**stored))


def latest_eval(mem: Memory, *, unfinished: bool = False) -> int | None:
    sql = "SELECT id FROM evals"
    if unfinished:
        sql += " WHERE status != 'finished'"
    rows = _rows(mem, sql + " ORDER BY id DESC LIMIT 1")
    return rows[0]["id"] if rows else None


def set_eval_status(mem: Memory, eval_id: int, status: str, error: str | None = None) -> None:
    with mem.transaction() as conn:
        conn.execute(
            "UPDATE evals SET status = ?, error = ?, finished_at = ? WHERE id = ?",
            [status, error, None if status == "running" else now(), eval_id],
        )


def ensure_episodes(mem: Memory, eval_id: int, plans: list[EpisodePlan]) -> None:
    """Insert planned episodes that are not stored yet (idempotent, for resume)."""
    with mem.transaction() as conn:
        for p in plans:
            conn.execute(
                "INSERT OR IGNORE INTO eval_episodes (eval_id, key, phase, task, variation, "
                "trials, namespace, status) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending')",
                [eval_id, p.key, p.phase, p.task, p.variation, p.trials, p.namespace],
            )


def episode(mem: Memory, eval_id: int, key: str) -> EpisodeRow:
    rows = _rows(mem, "SELECT * FROM eval_episodes WHERE eval_id = ? AND key = ?", [eval_id, key])
    if not rows:
        raise LookupError(f"eval {eval_id} has no episode {key}")
    return EpisodeRow(**{k: rows[0][k] for k in EpisodeRow.model_fields})


def set_episode(mem: Memory, episode_id: int, **fields: Any) -> None:
    if fields.get("status") in ("finished", "failed", "interrupted"):
        fields.setdefault("finished_at", now())
    cols = ", ".join(f"{k} = ?" for k in fields)
    with mem.transaction() as conn:
        conn.execute(f"UPDATE eval_episodes SET {cols} WHERE id = ?", [*fields.values(),
                                                                       episode_id])


def progress(mem: Memory, eval_id: int) -> tuple[int, list[str]]:
    """(completed trials, one line per trial running now): what the live bar shows."""
    episodes = {r["run_id"]: r for r in _rows(
        mem, "SELECT run_id, task, variation FROM eval_episodes WHERE eval_id = ? "
        "AND run_id IS NOT NULL", [eval_id])}
    done, running = mem.trial_counts(list(episodes))
    return done, [
        f"{episodes[t['run_id']]['task']} v{episodes[t['run_id']]['variation']} "
        f"trial {t['idx']} step {t['steps']}"
        for t in running
    ]


def close_unfinished(mem: Memory, eval_id: int, status: StopStatus) -> None:
    """After an interrupted or failed eval: no episode or trial of it stays ``running``."""
    for r in _rows(mem, "SELECT id, run_id FROM eval_episodes WHERE eval_id = ? "
                   "AND status = 'running'", [eval_id]):
        if r["run_id"] is not None:
            mem.close_run(r["run_id"], status, status)
        set_episode(mem, r["id"], status=status)
