"""What ScienceWorld and TextWorldExpress share: a simulator in its own JVM, reached over
py4j, that may die mid-episode. :class:`CrashReplay` restarts it and replays the episode so
the trial continues from the same state; ``close_gateway`` shuts one down without hanging."""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable
from typing import Any, TypeVar

from .base import EnvCrashed

log = logging.getLogger(__name__)
T = TypeVar("T")


def py4j_errors() -> tuple[type[BaseException], ...]:
    """What a call raises when the JVM behind it has died."""
    from py4j.protocol import Py4JError

    return (Py4JError, ConnectionError, OSError, EOFError)


def close_gateway(env: Any) -> None:
    """Close one py4j-backed simulator and wait for its JVM. A dead JVM's gateway is first
    marked disconnected: py4j's shutdown retries itself without bound on a refused connection
    (a RecursionError, which on CPython 3.11 also corrupts the recursion counter: a later
    ``ast.parse`` fails with 'AST constructor recursion depth mismatch'); the env's
    ``__del__`` would do the same when it is collected."""
    proc = env._gateway.java_process
    if proc.poll() is not None:
        env._gateway._gateway_client.is_connected = False
    try:
        env.close()
    except Exception:
        log.debug("closing the simulator failed", exc_info=True)
    try:
        proc.wait(timeout=5)
    except Exception:  # noqa: BLE001
        os.kill(proc.pid, signal.SIGKILL)


class CrashReplay:
    """Restart-and-replay around one simulator: records each action of the episode with the
    score after it; when a call fails because the JVM died, it ``close``s the simulator,
    ``load``s the episode afresh (starting a new JVM), replays the actions with
    ``replay_step`` (which returns the score) checking each score, and retries the call once.
    Past ``max_restarts`` in one process, or when the replay diverges, it raises
    :class:`EnvCrashed`."""

    def __init__(self, label: str, *, close: Callable[[], None], load: Callable[[], Any],
                 replay_step: Callable[[str], float], max_restarts: int = 3) -> None:
        self.label, self.max_restarts, self.restarts = label, max_restarts, 0
        self._close, self._load, self._replay_step = close, load, replay_step
        self.actions: list[str] = []
        self.scores: list[float] = []

    def begin(self) -> None:
        """A new episode: nothing to replay."""
        self.actions, self.scores = [], []

    def record(self, action: str, score: float) -> None:
        self.actions.append(action)
        self.scores.append(score)

    def run(self, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except py4j_errors() as exc:
            if self.restarts >= self.max_restarts:
                self._close()  # a later reset() starts a new JVM
                raise EnvCrashed(
                    f"{self.label} crashed {self.restarts + 1} times in this process ({exc})"
                ) from None
            self.restarts += 1
            log.warning("%s JVM died (%s); restarting and replaying %d actions",
                        self.label, exc, len(self.actions))
            self._close()
            t0 = time.perf_counter()
            self._load()
            for i, (past, score) in enumerate(zip(self.actions, self.scores), 1):
                got = self._replay_step(past)
                if got != score:
                    raise EnvCrashed(
                        f"{self.label} crashed and the replay diverged at action {i} "
                        f"({past!r}: score {got} instead of {score})"
                    ) from None
            log.warning("replayed in %.1fs", time.perf_counter() - t0)
            return fn()
