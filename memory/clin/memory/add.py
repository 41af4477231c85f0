"""Record one learning as it happens (an agent's tool call), outside a reflection.

``add_learning(mem, scope, "X MAY BE NECESSARY to Y")`` is ``mem.add_learning(...)``; the
rules (only adds, support 0, revives, retires the contradicted) are in ``memory.learnings``.
"""

from __future__ import annotations

from .abstractions import FORMS_HELP, Abstraction
from .learnings import AddResult, NotALearning, as_abstraction
from .scope import Scope
from .store import Memory

__all__ = ["FORMS_HELP", "AddResult", "NotALearning", "add_learning", "as_abstraction"]


def add_learning(
    mem: Memory, scope: Scope, learning: str | Abstraction, *, trial_id: int | None = None
) -> AddResult:
    """Add one learning to ``scope``; a text outside the four forms raises ``NotALearning``."""
    return mem.add_learning(scope, learning, trial_id=trial_id)
