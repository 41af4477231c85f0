"""The core schema of the memory, as an ordered list of migrations applied once each.

Each migration is a small function; the names of applied ones are recorded in
``_clin_migrations`` (the runner is ``memory.db.apply``). Never edit a migration that has
shipped: append a new one and raise nothing else (``SCHEMA`` derives its version from the
list). Column names are meant to be read by researchers in ``sqlite3`` or Datasette.
"""

from __future__ import annotations

import sqlite_utils

from .db import Migration, Schema

MIGRATIONS: list[Migration] = []
migration = MIGRATIONS.append


@migration
def m001_core(db: sqlite_utils.Database) -> None:
    db.table("runs").create(
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
    db.table("trials").create(
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
    db.table("trials").create_index(["run_id", "idx"])
    db.table("steps").create(
        {
            "id": int,
            "trial_id": int,
            "idx": int,
            "proposal": str,  # the action as the LLM wrote it
            "action": str,  # the action sent to the environment
            "grounding": str,  # a GroundingKind (store.py)
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
    db.table("steps").create_index(["trial_id", "idx"], unique=True)
    db.table("llm_calls").create(
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
    db.table("llm_calls").create_index(["trial_id"])
    db.table("learnings").create(
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
    db.table("learnings").create_index(["namespace", "agent", "task", "variation", "status"])
    db.table("learning_events").create(
        {
            "id": int,
            "learning_id": int,
            "trial_id": int,
            "event": str,  # see m004_value_checks
            "confidence": str,
            "text": str,
            "score": float,
            "created_at": str,
        },
        pk="id",
        foreign_keys=[("learning_id", "learnings", "id"), ("trial_id", "trials", "id")],
        not_null={"learning_id", "event"},
    )
    db.table("learning_events").create_index(["learning_id"])
    db.table("learning_events").create_index(["trial_id"])
    db.table("learnings").enable_fts(["cause", "effect", "text"], create_triggers=True, tokenize="porter")


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



# The allowed values of the status and event columns, as of m004 (the Literals in
# memory.runs and memory.learnings must list the same: tests/memory/test_memory_structure.py).
RUN_STATUSES = ("running", "finished", "failed", "interrupted")
TRIAL_STATUSES = ("running", "completed", "interrupted", "failed")
LEARNING_STATUSES = ("active", "retired")
LEARNING_EVENTS = ("added", "kept", "promoted", "demoted", "retired", "revived", "imported",
                   "inherited")  # m006 added "inherited" and rebuilt the event triggers
_CHECKED = (
    ("runs", "status", RUN_STATUSES),
    ("trials", "status", TRIAL_STATUSES),
    ("learnings", "status", LEARNING_STATUSES),
    ("learning_events", "event", LEARNING_EVENTS),
)


@migration
def m004_value_checks(db: sqlite_utils.Database) -> None:
    """Refuse status and event values outside their lists. Triggers, not CHECK constraints:
    SQLite adds a CHECK only by rebuilding the table, which old files with millions of rows
    should not pay for; rows already stored are not re-checked."""
    for table, column, values in _CHECKED:
        allowed = ", ".join(f"'{v}'" for v in values)
        for op in ("INSERT", "UPDATE"):
            of = f" OF [{column}]" if op == "UPDATE" else ""
            db.execute(
                f"CREATE TRIGGER [check_{table}_{column}_{op.lower()}] BEFORE {op}{of} "
                f"ON [{table}] WHEN NEW.[{column}] NOT IN ({allowed}) BEGIN "
                f"SELECT RAISE(ABORT, '{table}.{column} must be one of {allowed.replace(chr(39), '')}'); "
                "END"
            )


@migration
def m005_llm_calls_tokens_index(db: sqlite_utils.Database) -> None:
    """Token sums per trial (``v_trial_scores``, ``v_eval_trials``) from the index alone:
    without it each sum reads whole ``llm_calls`` rows, prompt text included (0.45 s instead
    of 0.07 s for 1,000 trials x 100 steps: bench/RESULTS.md, viewer page loads)."""
    db.table("llm_calls").create_index(["trial_id", "prompt_tokens", "completion_tokens"],
                                 index_name="idx_llm_calls_trial_tokens")


@migration
def m006_learnings_inherited(db: sqlite_utils.Database) -> None:
    """Inherited learnings (issue 10): a copy of a broader scope's learning made into a
    narrower scope, so that scope's reflections can demote or retire it there without touching
    the original other scopes see. ``inherited_from`` is the original's id; recall shows the
    copy instead of the original. The ``learning_events.event`` triggers of m004 are rebuilt
    to allow the ``inherited`` event."""
    db.execute("ALTER TABLE learnings ADD COLUMN inherited_from INTEGER REFERENCES learnings(id)")
    db.execute("CREATE INDEX idx_learnings_inherited_from ON learnings (inherited_from) "
               "WHERE inherited_from IS NOT NULL")
    allowed = ", ".join(f"'{v}'" for v in LEARNING_EVENTS)
    for op in ("INSERT", "UPDATE"):
        name = f"check_learning_events_event_{op.lower()}"
        of = " OF [event]" if op == "UPDATE" else ""
        db.execute(f"DROP TRIGGER IF EXISTS [{name}]")
        db.execute(
            f"CREATE TRIGGER [{name}] BEFORE {op}{of} ON [learning_events] "
            f"WHEN NEW.[event] NOT IN ({allowed}) BEGIN SELECT RAISE(ABORT, "
            f"'learning_events.event must be one of {allowed.replace(chr(39), '')}'); END"
        )


# Names older versions recorded for migrations that now belong to another component
# (``m003_eval``: the eval tables, owned by ``clin.trials`` since issue 11).
MOVED = frozenset({"m003_eval"})
SCHEMA = Schema(owner="memory", migrations=tuple(MIGRATIONS), version=len(MIGRATIONS))
