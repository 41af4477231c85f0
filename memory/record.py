"""Record a finished attempt from any agent: a trace of (action, observation) steps and a
score, stored as a run, a trial and its steps in one transaction.

Agents outside CLIN do not manage runs; ``record_trial`` files their attempts under one
``library`` run per scope, so ``v_trial_scores`` numbers them 1, 2, 3 ... like CLIN's own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from .errors import MemoryStoreError
from .scope import Scope
from .store import StepRecord, now, step_row

if TYPE_CHECKING:
    from .store import Memory

TraceItem = StepRecord | Mapping[str, Any] | Sequence[str]
LIBRARY_PROTOCOL = "library"


class TraceError(MemoryStoreError, ValueError):
    """A trace step is neither an (action, observation) pair nor a step mapping."""


def as_steps(trace: Sequence[TraceItem]) -> list[StepRecord]:
    """Normalize a trace into numbered ``StepRecord`` s (idx from 1, in the given order).

    Accepts ``(action, observation)`` pairs, mappings with StepRecord fields (``idx`` may be
    left out) and StepRecord objects, so an agent can hand over whatever it already keeps.
    """
    steps: list[StepRecord] = []
    for n, item in enumerate(trace, 1):
        try:
            if isinstance(item, StepRecord):
                steps.append(item.model_copy(update={"idx": n}))
            elif isinstance(item, Mapping):
                steps.append(StepRecord(**{**item, "idx": n}))
            elif isinstance(item, (tuple, list)) and len(item) == 2:
                steps.append(StepRecord(idx=n, action=str(item[0]), observation=str(item[1])))
            else:
                raise TraceError(
                    f"trace step {n} is {type(item).__name__}: give (action, observation) "
                    "or a mapping with at least 'action'"
                )
        except ValidationError as exc:
            raise TraceError(f"trace step {n}: {exc.errors()[0]['msg']}") from None
    return steps


def _library_run(mem: Memory, conn: Any, scope: Scope) -> int:
    where, params = scope.exact_filter()
    row = conn.execute(
        f"SELECT id FROM runs WHERE protocol = ? AND {where} ORDER BY id DESC LIMIT 1",
        [LIBRARY_PROTOCOL, *params],
    ).fetchone()
    if row is not None:
        return int(row[0])
    return mem._insert(conn, "runs", {
        "started_at": now(), "status": "finished", "protocol": LIBRARY_PROTOCOL,
        "namespace": scope.namespace, "agent": scope.agent, "env": scope.env,
        "task": scope.task, "variation": scope.variation, "config": "{}",
    })


def record_trial(
    mem: Memory,
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
    steps = as_steps(trace)
    ts = now()
    with mem.transaction() as conn:
        run = run_id if run_id is not None else _library_run(mem, conn, scope)
        if not conn.execute("SELECT 1 FROM runs WHERE id = ?", [run]).fetchone():
            raise ValueError(f"run {run} does not exist: pass a run id from start_run or none")
        idx = conn.execute(
            "SELECT ifnull(max(idx), 0) + 1 FROM trials WHERE run_id = ?", [run]
        ).fetchone()[0]
        trial_id = mem._insert(conn, "trials", {
            "run_id": run, "idx": idx, "namespace": scope.namespace, "agent": scope.agent,
            "env": scope.env, "task": scope.task, "variation": scope.variation,
            "status": "completed", "score": float(score), "steps": len(steps),
            "completed": None if completed is None else int(completed),
            "stop_reason": stop_reason, "learnings_written": 0, "learnings_rejected": 0,
            "started_at": ts, "finished_at": ts,
        })
        for step in steps:
            mem._insert(conn, "steps", step_row(trial_id, step, ts))
        if run_id is None:
            conn.execute("UPDATE runs SET finished_at = ? WHERE id = ?", [ts, run])
    return trial_id
