"""Render learnings into a prompt block, within a token budget, numbered for citation; and
the two helpers every prompt block is sized with (``clip``, ``within_budget``), here at the
bottom layer so the agent's controller, the reflection and meta-memory share them."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from pydantic import BaseModel

from .learnings import Learning

T = TypeVar("T")


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


def clip(text: str, limit: int, *, at_word: bool = False) -> str:
    """``text`` on one line within ``limit`` characters: cut (``at_word``: at a word boundary)
    and ended with "..." when longer; empty when ``limit`` is 0 or less."""
    text = " ".join(text.split())
    if limit <= 0:
        return ""
    if len(text) <= limit:
        return text
    cut = text[: max(0, limit - 3)]
    if at_word and " " in cut:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip() + "..."


def clip_tokens(text: str, budget: int) -> str:
    """``text`` on one line, cut at a word boundary to about ``budget`` tokens."""
    return clip(text, budget * 4, at_word=True)


def within_budget(items: Iterable[T], cost: Callable[[T], int],
                  budget_tokens: int | None) -> list[T]:
    """The leading ``items`` (the caller's order: most useful first) whose ``cost`` in tokens
    adds up to at most ``budget_tokens`` (None: all), so a prompt block never grows without
    bound."""
    kept: list[T] = []
    used = 0
    for item in items:
        used += cost(item)
        if budget_tokens is not None and used > budget_tokens:
            break
        kept.append(item)
    return kept


def render(learnings: Sequence[Learning], budget_tokens: int | None = None) -> RenderedMemory:
    """Number learnings [1], [2], ... in the given order (most useful first), stopping at
    the budget."""
    lines = within_budget(
        (f"[{n}] {learning.text}" for n, learning in enumerate(learnings, 1)),
        lambda line: estimate_tokens(line) + 1, budget_tokens)
    return RenderedMemory(text="\n".join(lines), ids=[lr.id for lr in learnings[: len(lines)]])
