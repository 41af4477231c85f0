"""The eval tables (``evals``, ``eval_episodes``, ``meta_*``), the paper's task groups and
the views ``clin report`` reads, as a schema owned by ``clin.trials`` and applied by the
memory's migration runner when the eval code opens a database (:func:`open_memory`).

``m003_eval`` keeps the name older versions recorded when these tables lived in the memory's
own schema, so existing files are recognized; later migrations are recorded as
``trials.<name>``. Never edit a migration that has shipped: append a new one.
"""

from __future__ import annotations

import os

import sqlite_utils

from clin.memory import Memory, Schema
from clin.memory.db import Migration

MIGRATIONS: list[Migration] = []
migration = MIGRATIONS.append


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
    db.table("evals").create(
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
    db.table("eval_episodes").create(
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
    db.table("eval_episodes").create_index(["eval_id", "key"], unique=True)
    db.table("meta_memories").create(
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
    db.table("meta_memories").create_index(["eval_id", "key"], unique=True)
    db.table("meta_sources").create(
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
    db.table("meta_sources").create_index(["meta_id"])
    db.table("meta_learnings").create(
        {"meta_id": int, "learning_id": int},
        pk=("meta_id", "learning_id"),
        foreign_keys=[("meta_id", "meta_memories", "id"), ("learning_id", "learnings", "id")],
    )
    db.table("task_groups").create({"task": str, "grp": str}, pk="task")
    db.table("task_groups").insert_all(
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


@migration
def m005_eval_protocol(db: sqlite_utils.Database) -> None:
    """Issue 10: a no-memory BASE phase, the gold path length and step limit of each episode,
    and paper-style numbers beside the raw ones.

    ``score_paper`` counts a negative final score (a failed task, -100) as 0, as the CLIN
    authors' averaging did (``sum(x for x in scores if x >= 0) / len(scores)``);
    ``steps_norm`` is steps / gold path length (1.0 = as short as the simulator's solution).
    """
    db.table("eval_episodes").add_column("gold_steps", int)  # simulator's gold path length
    db.table("eval_episodes").add_column("max_steps", int)  # the step limit its trials ran under
    # The LLM call that summarized this source (GEN-TASK: one call per source task).
    db.execute("ALTER TABLE meta_sources ADD COLUMN llm_call_id INTEGER REFERENCES llm_calls(id)")
    for view in ("v_eval_report_groups", "v_eval_report", "v_eval_curve", "v_eval_tasks",
                 "v_eval_episodes", "v_eval_trials"):
        db.execute(f"DROP VIEW IF EXISTS {view}")
    db.create_view(
        "v_eval_trials",
        """
        SELECT e.eval_id, ev.protocol, e.id AS episode_id, e.phase, e.task, e.variation,
               ifnull(g.grp, 'other') AS grp, t.run_id, t.id AS trial_id, t.idx AS trial,
               t.score, max(t.score, 0) AS score_paper, t.steps, e.gold_steps, e.max_steps,
               round(1.0 * t.steps / nullif(e.gold_steps, 0), 3) AS steps_norm,
               t.completed, t.stop_reason,
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
               max(CASE WHEN v.trial = 1 THEN v.score_paper END) AS trial1_paper,
               (SELECT l.score FROM v_eval_trials l WHERE l.episode_id = v.episode_id
                 ORDER BY l.trial DESC LIMIT 1) AS final_score,
               (SELECT l.score_paper FROM v_eval_trials l WHERE l.episode_id = v.episode_id
                 ORDER BY l.trial DESC LIMIT 1) AS final_paper,
               max(v.score) AS best_score,
               avg(v.steps) AS steps_per_trial,
               avg(v.steps_norm) AS steps_norm,
               max(v.gold_steps) AS gold_steps,
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
               round(avg(trial1_paper), 2) AS trial1_paper,
               round(avg(final_score), 2) AS final_score,
               round(avg(final_paper), 2) AS final_paper,
               round(avg(best_score), 2) AS best_score,
               round(avg(steps_per_trial), 2) AS steps_per_trial,
               round(avg(steps_norm), 2) AS steps_norm,
               round(avg(gold_steps), 1) AS gold_steps,
               round(avg(tokens_per_trial), 1) AS tokens_per_trial
        FROM v_eval_episodes
        GROUP BY eval_id, phase, task
        """,
    )
    db.create_view(
        "v_eval_report",
        """
        SELECT m.eval_id, m.protocol, m.task, m.grp, m.episodes,
               b.trial1_score AS base_score, b.trial1_paper AS base_paper,
               tr.trial1_score AS train_trial1_score, tr.trial1_paper AS train_trial1_paper,
               tr.final_score AS train_final_score, tr.final_paper AS train_final_paper,
               m.trial1_score, m.trial1_paper, m.final_score, m.final_paper, m.best_score,
               m.steps_per_trial, m.steps_norm, m.gold_steps, m.tokens_per_trial
        FROM v_eval_tasks m
        LEFT JOIN v_eval_tasks tr
          ON tr.eval_id = m.eval_id AND tr.task = m.task AND tr.phase = 'train'
        LEFT JOIN v_eval_tasks b
          ON b.eval_id = m.eval_id AND b.task = m.task AND b.phase = 'base'
        WHERE m.phase IN ('adapt', 'test')
        """,
    )
    cols = ("base_score", "base_paper", "train_trial1_score", "train_trial1_paper",
            "train_final_score", "train_final_paper", "trial1_score", "trial1_paper",
            "final_score", "final_paper", "best_score", "steps_per_trial", "steps_norm",
            "gold_steps")
    avg = ", ".join(f"round(avg({c}), 2) AS {c}" for c in cols)
    db.create_view(
        "v_eval_report_groups",
        f"""
        SELECT eval_id, grp, count(*) AS tasks, {avg},
               round(avg(tokens_per_trial), 1) AS tokens_per_trial
        FROM v_eval_report GROUP BY eval_id, grp
        UNION ALL
        SELECT eval_id, 'all', count(*), {avg}, round(avg(tokens_per_trial), 1)
        FROM v_eval_report GROUP BY eval_id
        """,
    )
    db.create_view(
        "v_eval_curve",
        """
        SELECT eval_id, phase, task, trial, count(*) AS episodes,
               round(avg(score), 2) AS score, round(avg(score_paper), 2) AS score_paper,
               round(avg(steps), 2) AS steps, round(avg(steps_norm), 2) AS steps_norm,
               round(avg(tokens), 1) AS tokens
        FROM v_eval_trials GROUP BY eval_id, phase, task, trial
        UNION ALL
        SELECT eval_id, phase, '(all tasks)', trial, count(*),
               round(avg(score), 2), round(avg(score_paper), 2), round(avg(steps), 2),
               round(avg(steps_norm), 2), round(avg(tokens), 1)
        FROM v_eval_trials GROUP BY eval_id, phase, trial
        """,
    )


SCHEMA = Schema(owner="trials", migrations=tuple(MIGRATIONS), legacy=frozenset({"m003_eval"}))


def open_memory(path: str | os.PathLike[str]) -> Memory:
    """The memory at ``path`` with the eval tables too (created on first use)."""
    return Memory(path, schemas=[SCHEMA])
