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
        _discard_leftovers(db, fn)
        with db.conn:
            fn(db)
            db.execute(
                "INSERT INTO _clin_migrations (name, applied_at) VALUES (?, datetime('now'))",
                [fn.__name__],
            )
        applied.append(fn.__name__)
    return applied


def _objects(db: sqlite_utils.Database) -> set[tuple[str, str]]:
    return {(t, n) for t, n in db.execute("SELECT type, name FROM sqlite_master").fetchall()}


def _discard_leftovers(db: sqlite_utils.Database, fn: Callable[[sqlite_utils.Database], None]) -> None:
    """Drop what an earlier, killed attempt at ``fn`` left behind.

    sqlite-utils commits each DDL statement on its own, so a SIGKILL half-way through a
    migration leaves some of its tables while the migration stays unrecorded, and re-running
    it failed with 'table ... already exists' on every later start. Nothing can have used
    those objects (a Memory is only handed out once every migration is recorded), so they
    are dropped and the migration runs again. The objects ``fn`` creates are found by
    applying the migrations up to it to an in-memory database.
    """
    scratch = sqlite_utils.Database(memory=True)
    created: set[tuple[str, str]] = set()
    for step in MIGRATIONS:
        before = _objects(scratch)
        step(scratch)
        if step is fn:
            created = _objects(scratch) - before
            break
    leftovers = created & _objects(db)
    order = {"view": 0, "trigger": 1, "index": 2, "table": 3}
    for kind, name in sorted(leftovers, key=lambda o: (order.get(o[0], 9), len(o[1]))):
        if kind in order and not name.startswith("sqlite_"):
            db.execute(f"DROP {kind.upper()} IF EXISTS [{name}]")


PAPER_SHORT_TASKS = (
    "use-thermometer", "measure-melting-point-known-substance", "find-plant",
    "find-living-thing", "chemistry-mix", "chemistry-mix-paint-secondary-color",
    "lifespan-longest-lived", "lifespan-shortest-lived", "identify-life-stages-2",
)
PAPER_LONG_TASKS = (
    "boil", "freeze", "grow-plant", "grow-fruit", "identify-life-stages-1",
    "inclined-plane-determine-angle", "inclined-plane-friction-named-surfaces",
    "mendelian-genetics-known-plant", "mendelian-genetics-unknown-plant",
)


@migration
def m003_eval(db: sqlite_utils.Database) -> None:
    """Evaluations (ADAPT / GEN-ENV / GEN-TASK over many episodes), meta-memories with their
    provenance, and the views `clin report` reads: every number it shows is one of these."""
    db["evals"].create(
        {
            "id": int,
            "protocol": str,  # adapt | gen-env | gen-task
            "status": str,  # running | finished | interrupted | failed
            "namespace": str,  # memory namespace of all its episodes (isolates evals)
            "model": str,
            "config": str,  # JSON of the EvalConfig
            "started_at": str,
            "finished_at": str,
            "error": str,
        },
        pk="id",
        not_null={"protocol", "status", "started_at"},
    )
    db["eval_episodes"].create(
        {
            "id": int,
            "eval_id": int,
            "key": str,  # phase/task/variation: what --resume matches on
            "phase": str,  # adapt | train (feeds a meta-memory) | test (conditioned by one)
            "task": str,
            "variation": int,
            "trials": int,  # trials requested
            "namespace": str,  # memory scope of the episode
            "run_id": int,  # the runs row holding its trials (NULL until started)
            "status": str,  # pending | running | finished | interrupted | failed
            "started_at": str,
            "finished_at": str,
        },
        pk="id",
        foreign_keys=[("eval_id", "evals", "id"), ("run_id", "runs", "id")],
        not_null={"eval_id", "key", "phase", "task", "status"},
    )
    db["eval_episodes"].create_index(["eval_id", "key"], unique=True)
    db["meta_memories"].create(
        {
            "id": int,
            "eval_id": int,
            "key": str,  # what it conditions, e.g. gen-env/find-plant
            "namespace": str,  # scope the learnings were stored at (task or env level)
            "agent": str,
            "env": str,
            "task": str,
            "variation": str,
            "status": str,  # building | done
            "llm_call_id": int,
            "learnings_written": int,
            "learnings_rejected": int,
            "created_at": str,
        },
        pk="id",
        foreign_keys=[("eval_id", "evals", "id"), ("llm_call_id", "llm_calls", "id")],
        not_null={"eval_id", "key", "status"},
    )
    db["meta_memories"].create_index(["eval_id", "key"], unique=True)
    db["meta_sources"].create(
        {
            "id": int,
            "meta_id": int,
            "source_episode_id": int,
            "source_run_id": int,
            "source_trial_id": int,  # the best trial of that episode, whose memory was summarized
            "source_task": str,
            "source_variation": int,
            "source_score": float,
        },
        pk="id",
        foreign_keys=[
            ("meta_id", "meta_memories", "id"),
            ("source_episode_id", "eval_episodes", "id"),
            ("source_run_id", "runs", "id"),
            ("source_trial_id", "trials", "id"),
        ],
        not_null={"meta_id", "source_trial_id"},
    )
    db["meta_sources"].create_index(["meta_id"])
    db["meta_learnings"].create(
        {"meta_id": int, "learning_id": int},
        pk=("meta_id", "learning_id"),
        foreign_keys=[("meta_id", "meta_memories", "id"), ("learning_id", "learnings", "id")],
    )
    db["task_groups"].create({"task": str, "grp": str}, pk="task")
    db["task_groups"].insert_all(
        [{"task": t, "grp": "short"} for t in PAPER_SHORT_TASKS]
        + [{"task": t, "grp": "long"} for t in PAPER_LONG_TASKS]
    )
    db.create_view(
        "v_eval_trials",
        """
        SELECT e.eval_id, ev.protocol, e.id AS episode_id, e.phase, e.task, e.variation,
               ifnull(g.grp, 'other') AS grp, t.run_id, t.id AS trial_id, t.idx AS trial,
               t.score, t.steps, t.completed, t.stop_reason,
               (SELECT ifnull(sum(c.prompt_tokens), 0) + ifnull(sum(c.completion_tokens), 0)
                  FROM llm_calls c WHERE c.trial_id = t.id) AS tokens
        FROM eval_episodes e
        JOIN evals ev ON ev.id = e.eval_id
        JOIN trials t ON t.run_id = e.run_id AND t.status = 'completed'
        LEFT JOIN task_groups g ON g.task = e.task
        """,
    )
    db.create_view(
        "v_eval_episodes",
        """
        SELECT v.eval_id, v.protocol, v.episode_id, v.phase, v.task, v.variation, v.grp,
               count(*) AS trials,
               max(CASE WHEN v.trial = 1 THEN v.score END) AS trial1_score,
               (SELECT l.score FROM v_eval_trials l WHERE l.episode_id = v.episode_id
                 ORDER BY l.trial DESC LIMIT 1) AS final_score,
               max(v.score) AS best_score,
               avg(v.steps) AS steps_per_trial,
               avg(v.tokens) AS tokens_per_trial
        FROM v_eval_trials v
        GROUP BY v.episode_id
        """,
    )
    db.create_view(
        "v_eval_tasks",
        """
        SELECT eval_id, protocol, phase, task, grp, count(*) AS episodes,
               round(avg(trial1_score), 2) AS trial1_score,
               round(avg(final_score), 2) AS final_score,
               round(avg(best_score), 2) AS best_score,
               round(avg(steps_per_trial), 2) AS steps_per_trial,
               round(avg(tokens_per_trial), 1) AS tokens_per_trial
        FROM v_eval_episodes
        GROUP BY eval_id, phase, task
        """,
    )
    db.create_view(
        "v_eval_report",
        """
        SELECT m.eval_id, m.protocol, m.task, m.grp, m.episodes,
               tr.trial1_score AS train_trial1_score,
               tr.final_score AS train_final_score,
               m.trial1_score, m.final_score, m.best_score,
               m.steps_per_trial, m.tokens_per_trial
        FROM v_eval_tasks m
        LEFT JOIN v_eval_tasks tr
          ON tr.eval_id = m.eval_id AND tr.task = m.task AND tr.phase = 'train'
        WHERE m.phase IN ('adapt', 'test')
        """,
    )
    db.create_view(
        "v_eval_report_groups",
        """
        SELECT eval_id, grp, count(*) AS tasks,
               round(avg(train_trial1_score), 2) AS train_trial1_score,
               round(avg(train_final_score), 2) AS train_final_score,
               round(avg(trial1_score), 2) AS trial1_score,
               round(avg(final_score), 2) AS final_score,
               round(avg(best_score), 2) AS best_score,
               round(avg(steps_per_trial), 2) AS steps_per_trial,
               round(avg(tokens_per_trial), 1) AS tokens_per_trial
        FROM v_eval_report GROUP BY eval_id, grp
        UNION ALL
        SELECT eval_id, 'all', count(*),
               round(avg(train_trial1_score), 2), round(avg(train_final_score), 2),
               round(avg(trial1_score), 2), round(avg(final_score), 2),
               round(avg(best_score), 2), round(avg(steps_per_trial), 2),
               round(avg(tokens_per_trial), 1)
        FROM v_eval_report GROUP BY eval_id
        """,
    )
    db.create_view(
        "v_eval_curve",
        """
        SELECT eval_id, phase, task, trial, count(*) AS episodes,
               round(avg(score), 2) AS score, round(avg(steps), 2) AS steps,
               round(avg(tokens), 1) AS tokens
        FROM v_eval_trials GROUP BY eval_id, phase, task, trial
        UNION ALL
        SELECT eval_id, phase, '(all tasks)', trial, count(*),
               round(avg(score), 2), round(avg(steps), 2), round(avg(tokens), 1)
        FROM v_eval_trials GROUP BY eval_id, phase, trial
        """,
    )
    db.create_view(
        "v_meta_memories",
        """
        SELECT m.id AS meta_id, m.eval_id, m.key, m.namespace, m.env, m.task, m.status,
               l.id AS learning_id, l.text, l.confidence,
               (SELECT group_concat(s.source_trial_id) FROM meta_sources s
                 WHERE s.meta_id = m.id) AS source_trial_ids
        FROM meta_memories m
        JOIN meta_learnings ml ON ml.meta_id = m.id
        JOIN learnings l ON l.id = ml.learning_id
        """,
    )
