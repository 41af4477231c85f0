"""Inherited learnings: a narrower scope takes its own, revisable copy of what it inherits.

Recall lets a scope see the learnings of its ancestors (a test variation sees its task's
meta-memory), but reflection only revises the scope's own rows, so an inherited learning that
the episode contradicts would stay in every later prompt. ``inherit`` copies the inherited
learnings into the scope with ``inherited_from`` pointing at the original; recall then shows
the copy instead of the original (``ranking.candidates_sql``), and the scope's reflections
keep, demote or retire the copy like any learning of its own. The original, and what every
other scope sees, never changes. Each copy gets an ``inherited`` event.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .scope import Scope

if TYPE_CHECKING:
    from .store import Memory

_COPIED = ("cause, effect, relation, confidence, text, key, support, score_sum, "
           "first_trial_id, last_trial_id, first_seen")


def inherit(mem: Memory, scope: Scope) -> list[int]:
    from .store import now

    own = (scope.env, scope.task, scope.variation)
    sources = [lr for lr in mem.recall(scope) if (lr.env, lr.task, lr.variation) != own]
    if not sources:
        return []
    ts = now()
    copies: list[int] = []
    with mem.transaction() as conn:
        for src in sources:
            # OR IGNORE: the scope already holds a learning with the same key; it stays.
            cur = conn.execute(
                f"INSERT OR IGNORE INTO learnings (namespace, agent, env, task, variation, "
                f"{_COPIED}, status, last_seen, inherited_from) "
                f"SELECT ?, ?, ?, ?, ?, {_COPIED}, 'active', ?, id FROM learnings WHERE id = ?",
                [scope.namespace, scope.agent, scope.env, scope.task, scope.variation, ts,
                 src.id],
            )
            if not cur.rowcount:
                continue
            lid = int(cur.lastrowid)
            conn.execute(
                "INSERT INTO learning_events (learning_id, trial_id, event, confidence, text, "
                "score, created_at) VALUES (?, NULL, 'inherited', ?, ?, NULL, ?)",
                [lid, src.confidence, src.text, ts],
            )
            copies.append(lid)
    return copies
