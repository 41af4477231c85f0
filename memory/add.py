"""Record one learning as it happens (an agent's tool call), outside a reflection.

``Memory.apply_reflection`` treats its input as the *whole* updated memory of a scope and
demotes what is missing, which is right after a trial and wrong for a single sentence.
``add_learning`` only adds, with support 0 until a reflection keeps it (support counts
reflections, not tool calls): a known learning is left as it is, a retired one is revived,
and an active learning with the opposite relation for the same cause and effect is retired,
as a reflection would do. Every change has an event row.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel

from .abstractions import Abstraction, parse_line
from .errors import MemoryStoreError
from .scope import Scope
from .store import now

if TYPE_CHECKING:
    from .store import Memory


class NotALearning(MemoryStoreError, ValueError):
    """The text is not one of the four causal forms; the message says what is accepted."""


class AddResult(BaseModel):
    """What ``add_learning`` did; ``text`` is the canonical sentence stored."""

    id: int
    text: str
    status: Literal["added", "known", "revived"]
    retired_ids: list[int] = []


FORMS_HELP = (
    "write exactly one of: 'X SHOULD BE NECESSARY to Y', 'X MAY BE NECESSARY to Y', "
    "'X MAY NOT CONTRIBUTE to Y', 'X DOES NOT CONTRIBUTE to Y'"
)


def as_abstraction(learning: str | Abstraction) -> Abstraction:
    if isinstance(learning, Abstraction):
        return learning
    parsed = parse_line(learning) if "\n" not in learning.strip() else None
    if parsed is None:
        raise NotALearning(f"not a causal learning: {learning[:200]!r}; {FORMS_HELP}")
    return parsed


def add_learning(
    mem: Memory, scope: Scope, learning: str | Abstraction, *, trial_id: int | None = None
) -> AddResult:
    ab = as_abstraction(learning)
    cause_key, _, effect_key = ab.key.split("|")
    other = "does-not-contribute" if ab.relation == "necessary" else "necessary"
    where, params = scope.exact_filter()
    ts = now()

    def event(conn: object, lid: int, kind: str, conf: str, text: str) -> None:
        mem._insert(conn, "learning_events", {  # type: ignore[arg-type]
            "learning_id": lid, "trial_id": trial_id, "event": kind, "confidence": conf,
            "text": text, "created_at": ts,
        })

    with mem.transaction() as conn:
        row = conn.execute(
            f"SELECT id, status, text FROM learnings WHERE {where} AND key = ?",
            [*params, ab.key],
        ).fetchone()
        if row is not None and row[1] == "active":
            return AddResult(id=row[0], text=row[2], status="known")
        retired = [
            (r[0], r[1], r[2]) for r in conn.execute(
                f"SELECT id, confidence, text FROM learnings WHERE {where} AND key = ? "
                "AND status = 'active'", [*params, f"{cause_key}|{other}|{effect_key}"],
            )
        ]
        for lid, conf, text in retired:
            conn.execute("UPDATE learnings SET status = 'retired' WHERE id = ?", [lid])
            event(conn, lid, "retired", conf, text)
        if row is not None:
            conn.execute(
                "UPDATE learnings SET status = 'active', confidence = ?, text = ?, "
                "last_seen = ? WHERE id = ?", [ab.confidence, ab.text, ts, row[0]],
            )
            event(conn, row[0], "revived", ab.confidence, ab.text)
            return AddResult(id=row[0], text=ab.text, status="revived",
                             retired_ids=[r[0] for r in retired])
        lid = mem._insert(conn, "learnings", {
            **scope.model_dump(), "cause": ab.cause, "effect": ab.effect,
            "relation": ab.relation, "confidence": ab.confidence, "text": ab.text,
            "key": ab.key, "status": "active", "support": 0, "score_sum": 0.0,
            "first_trial_id": trial_id, "last_trial_id": trial_id, "first_seen": ts,
            "last_seen": ts,
        })
        event(conn, lid, "added", ab.confidence, ab.text)
    return AddResult(id=lid, text=ab.text, status="added", retired_ids=[r[0] for r in retired])
