"""A fault-injecting wrapper around any :class:`ChatLLM`, for reliability tests.

At ``rate``, a call fails the way real endpoints fail: a transient error (429, 500, timeout,
dropped connection), which is retried through :func:`call_with_retries` like a real backend
does, or a well-formed answer whose content is empty, malformed JSON, or text with no action,
which the agent has to cope with (re-ask, fallback). Draws come from ``random.Random(seed)``,
so a run is reproducible. A content fault stands in for a call: the inner model is not asked,
so a scripted inner model stays aligned with the valid answers it gives.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable, Sequence

from ..errors import TransientLLMError
from .base import ChatLLM, Completion, JsonSchema, Message
from .retry import call_with_retries

TRANSIENT_FAULTS = ("429", "500", "timeout", "connection")
CONTENT_FAULTS = ("empty", "malformed", "noaction")
ALL_FAULTS = TRANSIENT_FAULTS + CONTENT_FAULTS
FAULT_TEXT = {
    "empty": "",
    "malformed": '{"used_learnings": [1, "rationale": "x", "action": "open do',
    "noaction": "Hmm, I am not sure. Let me think about the task for a moment.",
}


class FaultyLLM:
    """``FaultyLLM(inner, rate=0.2, seed=0)``; ``injected`` counts faults by kind."""

    def __init__(
        self,
        inner: ChatLLM,
        *,
        rate: float = 0.2,
        seed: int = 0,
        kinds: Sequence[str] = ALL_FAULTS,
        attempts: int = 5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        unknown = set(kinds) - set(ALL_FAULTS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; choose from {ALL_FAULTS}")
        if not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be within 0..1")
        self.inner, self.rate, self.kinds = inner, rate, tuple(kinds)
        self.attempts, self.sleep = attempts, sleep
        self.rng = random.Random(seed)
        self.name = inner.name
        self.enforces_schema = bool(getattr(inner, "enforces_schema", False))
        self.calls = 0  # complete() calls that returned
        self.tries = 0  # attempts made, including failed ones
        self.injected: Counter[str] = Counter()

    @property
    def faults_injected(self) -> int:
        return sum(self.injected.values())

    def complete(self, messages: list[Message], *, json_schema: JsonSchema | None = None,
                 max_tokens: int = 256) -> Completion:
        t0 = time.perf_counter()

        def attempt() -> Completion:
            self.tries += 1
            kind = self._draw()
            if kind in TRANSIENT_FAULTS:
                raise TransientLLMError(f"injected fault: {kind}")
            if kind in CONTENT_FAULTS:
                text = FAULT_TEXT[kind]
                return Completion(text=text, model=self.name, prompt_tokens=0,
                                  completion_tokens=len(text) // 4)
            return self.inner.complete(messages, json_schema=json_schema, max_tokens=max_tokens)

        completion, tries = call_with_retries(attempt, attempts=self.attempts, sleep=self.sleep)
        self.calls += 1
        return completion.model_copy(update={
            "attempts": completion.attempts + tries - 1,
            "latency_ms": (time.perf_counter() - t0) * 1000,
        })

    def _draw(self) -> str | None:
        if self.kinds and self.rng.random() < self.rate:
            kind = self.rng.choice(self.kinds)
            self.injected[kind] += 1
            return kind
        return None
