"""The database schema, as an ordered list of migrations applied once each.

Each migration is a small function; the names of applied ones are recorded in
``_clin_migrations``. Never edit a migration that has shipped: append a new one.
Column names are meant to be read by researchers in ``sqlite3`` or Datasette.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlite_utils

MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = []
migration = MIGRATIONS.append


@migration
def m001_core(db: sqlite_utils.Database) -> None:
    db["runs"].create(
        {
            "id": int,
            "started_at": str,
            "finished_at": str,
            "status": str,  # running | finished | failed | interrupted
            "protocol": str,  # adapt | gen-env | gen-task | custom
            "model": str,
            "namespace": str,
            "agent": str,
            "env": str,
            "task": str,
            "variation": str,
            "trials_requested": int,
            "config": str,  # JSON of the settings used (never secrets)
            "error": str,
        },
        pk="id",
        not_null={"started_at", "status"},
    )
    db["trials"].create(
        {
            "id": int,
            "run_id": int,
            "idx": int,  # 1-based trial number within the run
            "namespace": str,
            "agent": str,
            "env": str,
            "task": str,
            "variation": str,
            "status": str,  # running | completed | interrupted | failed
            "score": float,
            "steps": int,
            "completed": int,  # 1 when the environment reported the task done with full score
            "stop_reason": str,
            "learnings_written": int,
            "learnings_rejected": int,
            "started_at": str,
            "finished_at": str,
        },
        pk="id",
        foreign_keys=[("run_id", "runs", "id")],
        not_null={"run_id", "idx", "status"},
    )
    db["trials"].create_index(["run_id", "idx"])
    db["steps"].create(
        {
            "id": int,
            "trial_id": int,
            "idx": int,
            "proposal": str,  # the action as the LLM wrote it
            "action": str,  # the action sent to the environment
            "grounding": str,  # exact | normalized | fuzzy | reask | constrained | choice
            "rationale": str,
            "cited_learning_ids": str,  # JSON list of learnings.id the LLM said it used
            "observation": str,
            "reward": float,
            "score": float,
            "done": int,
            "llm_ms": float,
            "env_ms": float,
            "overhead_ms": float,
            "created_at": str,
        },
        pk="id",
        foreign_keys=[("trial_id", "trials", "id")],
        not_null={"trial_id", "idx"},
    )
    db["steps"].create_index(["trial_id", "idx"], unique=True)
    db["llm_calls"].create(
        {
            "id": int,
            "run_id": int,
            "trial_id": int,
            "step_idx": int,
            "purpose": str,  # controller | reask | reflection | meta
            "model": str,
            "prompt_tokens": int,
            "completion_tokens": int,
            "latency_ms": float,
            "attempts": int,  # 1 + retries on transient errors
            "error": str,
            "prompt": str,
            "response": str,
            "created_at": str,
        },
        pk="id",
        foreign_keys=[("run_id", "runs", "id"), ("trial_id", "trials", "id")],
    )
    db["llm_calls"].create_index(["trial_id"])
    db["learnings"].create(
        {
            "id": int,
            "namespace": str,
            "agent": str,
            "env": str,  # NULL: applies to every environment
            "task": str,  # NULL: applies to every task
            "variation": str,  # NULL: applies to every variation of the task
            "cause": str,
            "effect": str,
            "relation": str,  # necessary | does-not-contribute
            "confidence": str,  # should | may
            "text": str,  # the sentence as rendered into prompts
            "key": str,  # normalized cause|relation|effect used for dedup
            "status": str,  # active | retired
            "support": int,  # number of reflections that kept or wrote it
            "score_sum": float,  # sum of the scores of those trials
            "first_trial_id": int,
            "last_trial_id": int,
            "first_seen": str,
            "last_seen": str,
        },
        pk="id",
        foreign_keys=[("first_trial_id", "trials", "id"), ("last_trial_id", "trials", "id")],
        not_null={"namespace", "agent", "cause", "effect", "relation", "confidence", "key"},
    )
    db.execute(
        "CREATE UNIQUE INDEX idx_learnings_scope_key ON learnings "
        "(namespace, agent, ifnull(env, ''), ifnull(task, ''), ifnull(variation, ''), key)"
    )
    db["learnings"].create_index(["namespace", "agent", "task", "variation", "status"])
    db["learning_events"].create(
        {
            "id": int,
            "learning_id": int,
            "trial_id": int,
            "event": str,  # added | kept | promoted | demoted | dropped | retired | revived
            "confidence": str,
            "text": str,
            "score": float,
            "created_at": str,
        },
        pk="id",
        foreign_keys=[("learning_id", "learnings", "id"), ("trial_id", "trials", "id")],
        not_null={"learning_id", "event"},
    )
    db["learning_events"].create_index(["learning_id"])
    db["learning_events"].create_index(["trial_id"])
    db["learnings"].enable_fts(["cause", "effect", "text"], create_triggers=True, tokenize="porter")


@migration
def m002_views(db: sqlite_utils.Database) -> None:
    db.create_view(
        "v_learnings",
        """
        SELECT l.id, l.namespace, l.agent, l.env, l.task, l.variation, l.text, l.cause,
               l.effect, l.relation, l.confidence, l.support,
               round(l.score_sum / max(l.support, 1), 2) AS mean_score,
               l.first_trial_id, l.last_trial_id, l.first_seen, l.last_seen
        FROM learnings l WHERE l.status = 'active'
        """,
    )
    db.create_view(
        "v_learning_history",
        """
        SELECT e.id AS event_id, e.learning_id, l.task, l.variation, t.run_id, t.idx AS trial,
               e.trial_id, e.event, e.confidence, e.text, e.score, e.created_at
        FROM learning_events e
        JOIN learnings l ON l.id = e.learning_id
        LEFT JOIN trials t ON t.id = e.trial_id
        ORDER BY e.learning_id, e.id
        """,
    )
    db.create_view(
        "v_trial_scores",
        """
        SELECT t.run_id, t.id AS trial_id, t.idx AS trial, t.task, t.variation, t.status,
               t.score, t.steps, t.completed, t.stop_reason, t.learnings_written,
               (SELECT ifnull(sum(c.prompt_tokens), 0) FROM llm_calls c
                 WHERE c.trial_id = t.id) AS prompt_tokens,
               (SELECT ifnull(sum(c.completion_tokens), 0) FROM llm_calls c
                 WHERE c.trial_id = t.id) AS completion_tokens
        FROM trials t ORDER BY t.run_id, t.idx
        """,
    )


def apply(db: sqlite_utils.Database) -> list[str]:
    """Apply pending migrations in order; return the names applied."""
    table = db["_clin_migrations"]
    if not table.exists():
        table.create({"name": str, "applied_at": str}, pk="name")
    done = {row["name"] for row in table.rows}
    applied = []
    for fn in MIGRATIONS:
        if fn.__name__ in done:
            continue
        with db.conn:
            fn(db)
            db.execute(
                "INSERT INTO _clin_migrations (name, applied_at) VALUES (?, datetime('now'))",
                [fn.__name__],
            )
        applied.append(fn.__name__)
    return applied
