"""What ScienceWorld and TextWorldExpress share: a simulator in its own JVM, reached over
py4j, that may die mid-episode.

:class:`JvmEnv` is the one wrapper both adapters are built on: it starts the JVM, guards
``reset``/``step`` (no step before a reset or after the episode ended), and runs every
episode call through :class:`CrashReplay`, which restarts a dead JVM and replays the
episode so the trial continues from the same state. Every call into the JVM goes through
:class:`Guarded`, so a Ctrl-C that lands inside one is a ``KeyboardInterrupt`` for every
caller (py4j 0.10.9.9 turns it into ``AttributeError: 'GatewayConnection' object has no
attribute 'shutdown_socket'``). ``close_gateway`` shuts one down without hanging."""

from __future__ import annotations

import functools
import logging
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from .base import ClosesOnExit, EnvCrashed, EnvError, EnvUnavailable, Observation, TaskInfo

log = logging.getLogger(__name__)
T = TypeVar("T")


def py4j_errors() -> tuple[type[BaseException], ...]:
    """What a call raises when the JVM behind it has died."""
    from py4j.protocol import Py4JError

    return (Py4JError, ConnectionError, OSError, EOFError)


def interrupted(exc: BaseException, before: BaseException | None = None) -> bool:
    """Whether ``exc`` is a ``KeyboardInterrupt`` or was raised while handling one that came
    after ``before`` (the exception already being handled when the call began, which is
    not this call's): a library that catches Ctrl-C to clean up and fails doing so hides it."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and cur is not before and id(cur) not in seen:
        if isinstance(cur, KeyboardInterrupt):
            return True
        seen.add(id(cur))
        cur = cur.__context__
    return False


@contextmanager
def interruptible() -> Iterator[None]:
    """Re-raise an error that hides a Ctrl-C raised in the block (see :func:`interrupted`)
    as the ``KeyboardInterrupt`` it was, so a run stopped mid-call is ``interrupted``, not
    ``failed``, and never restarts the simulator."""
    before = sys.exc_info()[1]
    try:
        yield
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        if interrupted(exc, before):
            raise KeyboardInterrupt from exc
        raise


class Guarded:
    """A py4j-backed simulator object whose method calls run under :func:`interruptible`;
    its other attributes pass through."""

    def __init__(self, target: Any) -> None:
        self._target = target

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if not callable(attr):
            return attr

        @functools.wraps(attr)
        def call(*args: Any, **kwargs: Any) -> Any:
            with interruptible():
                return attr(*args, **kwargs)

        return call


def close_gateway(env: Any) -> None:
    """Close one py4j-backed simulator and wait for its JVM. A dead JVM's gateway is first
    marked disconnected: py4j's shutdown retries itself without bound on a refused connection
    (a RecursionError, which on CPython 3.11 also corrupts the recursion counter: a later
    ``ast.parse`` fails with 'AST constructor recursion depth mismatch'); the env's
    ``__del__`` would do the same when it is collected."""
    if isinstance(env, Guarded):
        env = env._target
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


class JvmEnv(ClosesOnExit):
    """The shared part of a py4j-backed :class:`~clin.envs.base.TextEnv`: the JVM's life
    cycle, the episode guards and crash replay. A subclass sets ``name``, ``profile``,
    ``label`` and ``java_help`` and implements ``_launch`` (the package's env object, which
    starts a JVM), ``check``, ``_load`` (reset the current ``_task``/``_variation`` and
    observe), ``_step`` and ``_replay_step`` (one action; its score). Not thread-safe: one
    simulator per process."""

    label = "the simulator"
    java_help = "the simulator needs Java (17 recommended) and `java` was not found on PATH"

    def __init__(self, *, max_restarts: int = 3) -> None:
        self._env: Any = None
        self._task: str | None = None
        self._variation = 0
        self._done = False
        self._replay = CrashReplay(self.label, close=self.close, load=self._load,
                                   replay_step=self._replay_step, max_restarts=max_restarts)

    # ------------------------------------------------------------------ to implement
    def _launch(self) -> Any:
        raise NotImplementedError

    def check(self, task: str, variation: int) -> TaskInfo:
        raise NotImplementedError

    def _load(self) -> Observation:
        raise NotImplementedError

    def _step(self, action: str) -> Observation:
        raise NotImplementedError

    def _replay_step(self, action: str) -> float:
        raise NotImplementedError

    # ------------------------------------------------------------------ lifecycle
    def _start(self) -> Any:
        """The running simulator (:class:`Guarded`), its JVM started on first use."""
        if self._env is None:
            if shutil.which("java") is None:
                raise EnvUnavailable(self.java_help)
            try:
                with interruptible():
                    self._env = Guarded(self._launch())
            except EnvError:
                raise
            except Exception as exc:  # noqa: BLE001 - py4j raises plain Exception
                raise EnvUnavailable(f"could not start the {self.label} JVM: {exc}") from None
        return self._env

    @property
    def java_pid(self) -> int | None:
        """PID of the JVM, e.g. for fault-injection tests."""
        return None if self._env is None else self._env._gateway.java_process.pid

    @property
    def restarts(self) -> int:
        """JVM restarts so far in this process."""
        return self._replay.restarts

    def close(self) -> None:
        env, self._env = self._env, None
        if env is not None:
            close_gateway(env)

    # ------------------------------------------------------------------ episode
    def reset(self, task: str, variation: int) -> Observation:
        self.check(task, variation)
        self._task, self._variation = task, variation
        self._done = False
        self._replay.begin()
        return self._replay.run(self._load)

    def step(self, action: str) -> Observation:
        if self._task is None:
            raise EnvError("call reset() before step()")
        if self._done:
            raise EnvError("the episode is over; call reset() to start another")
        result = self._replay.run(lambda: self._step(action))
        self._replay.record(action, result.score)
        self._done = result.done
        return result
