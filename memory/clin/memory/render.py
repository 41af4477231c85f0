"""Render learnings into a prompt block, within a token budget, numbered for citation."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel

from .learnings import Learning


class RenderedMemory(BaseModel):
    """Prompt text plus the mapping from the numbers the LLM sees to ``learnings.id``."""

    text: str
    ids: list[int]  # ids[n - 1] is the learning shown as [n]

    def resolve(self, numbers: Sequence[int]) -> list[int]:
        """Map numbers cited by the LLM back to learning ids, ignoring unknown numbers."""
        return [self.ids[n - 1] for n in numbers if 1 <= n <= len(self.ids)]


def estimate_tokens(text: str) -> int:
    """A cheap, model-free token estimate (about four characters a token in English)."""
    return (len(text) + 3) // 4


def render(learnings: Sequence[Learning], budget_tokens: int | None = None) -> RenderedMemory:
    """Number learnings [1], [2], ... in the given order (most useful first), stopping at
    the budget so the prompt never grows without bound."""
    lines: list[str] = []
    ids: list[int] = []
    used = 0
    for learning in learnings:
        line = f"[{len(ids) + 1}] {learning.text}"
        cost = estimate_tokens(line) + 1
        if budget_tokens is not None and used + cost > budget_tokens:
            break
        lines.append(line)
        ids.append(learning.id)
        used += cost
    return RenderedMemory(text="\n".join(lines), ids=ids)
