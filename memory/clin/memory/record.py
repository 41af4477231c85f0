"""Steps as data: what one agent step stores, and how a trace from any agent (pairs of
(action, observation), step mappings, or ``StepRecord`` s) becomes numbered steps."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, get_args

from pydantic import BaseModel, Field, ValidationError

from .errors import MemoryStoreError

# How an agent turned the LLM's proposal into the command it sent (see clin/clin/executor.py):
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


TraceItem = StepRecord | Mapping[str, Any] | Sequence[str]


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
