"""The learnings block of a prompt: the scope's own learnings first, then the inherited ones
under their own headings ("from other variations of this task", "from other tasks", "from
another environment"), numbered across all sections so the controller can cite any of
them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from clin import prompts
from clin.memory import Learning, RenderedMemory, Scope, render

Origin = Literal["own", "task", "tasks", "envs"]
ORDER: tuple[Origin, ...] = ("own", "task", "tasks", "envs")


def _level(env: str | None, task: str | None, variation: str | None) -> str:
    if variation is not None:
        return "variation"
    if task is not None:
        return "task"
    return "env" if env is not None else "global"


def origin(learning: Learning, scope: Scope) -> Origin:
    """Where a learning came from, seen from ``scope``: its own, another variation of the same
    task (a task-level learning), other tasks (an environment-level one), or another
    environment (a global one, bound to no environment, seen from a scope in one: what a
    cross-environment eval's meta-memory holds). A copy made by ``Memory.inherit`` counts
    where its original was."""
    if learning.inherited_from is not None:
        level = learning.inherited_level or "global"
    else:
        level = _level(learning.env, learning.task, learning.variation)
        if level == _level(scope.env, scope.task, scope.variation):
            return "own"
    if level == "variation":
        return "own"
    if level == "global" and scope.env is not None:
        return "envs"
    return "task" if level == "task" else "tasks"


def render_memory(learnings: Sequence[Learning], scope: Scope,
                  budget_tokens: int | None) -> RenderedMemory:
    """Number and render ``learnings`` (in recall order within each section) for ``scope``,
    own first, within ``budget_tokens`` for the numbered lines."""
    groups: dict[Origin, list[Learning]] = {o: [] for o in ORDER}
    for learning in learnings:
        groups[origin(learning, scope)].append(learning)
    ordered = [lr for o in ORDER for lr in groups[o]]
    numbered = render(ordered, budget_tokens)
    lines = numbered.text.splitlines() if numbered.text else []
    sections: list[tuple[Origin, list[str]]] = []
    start = 0
    for o in ORDER:
        part = lines[start:start + len(groups[o])]
        start += len(part)
        if part:
            sections.append((o, part))
    if not sections:
        return numbered
    return RenderedMemory(text=prompts.render("memory_block", sections=sections),
                          ids=numbered.ids)
