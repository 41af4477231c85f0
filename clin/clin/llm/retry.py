"""The single place where LLM calls are retried: transient errors only, bounded, with
exponential backoff and jitter. Backends raise TransientLLMError for what may pass."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from ..errors import TransientLLMError

T = TypeVar("T")


def call_with_retries(
    fn: Callable[[], T],
    *,
    attempts: int = 5,
    initial_wait: float = 0.5,
    max_wait: float = 20.0,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[T, int]:
    """Call ``fn`` until it succeeds or raises a non-transient error; return (result, tries)."""
    tries = 0

    def count(_: RetryCallState) -> None:
        nonlocal tries
        tries += 1

    retrying = Retrying(
        stop=stop_after_attempt(attempts),
        wait=wait_exponential_jitter(multiplier=initial_wait, max=max_wait),
        retry=retry_if_exception_type(TransientLLMError),
        before=count,
        sleep=sleep,
        reraise=True,
    )
    try:
        result = retrying(fn)
    except TransientLLMError as exc:
        raise TransientLLMError(f"{exc} (gave up after {tries} attempts)") from exc
    return result, tries
