"""ScienceWorld behind the :class:`clin.envs.base.TextEnv` protocol.

Quirks handled here (see the package's own behaviour):
- ``is_completed`` mixes success, failure (score < 0) and the step limit; we report ``done``
  and leave the score to tell them apart, and refuse to step after ``done``.
- An ambiguous command answers with numbered choices; they are parsed into
  ``Observation.choices`` so the executor can answer with a number.
- The simulator's parser accepts more than its valid-action list spells ("focus on
  thermometer in inventory", "pick up metal pot" for a pot listed as "metal pot containing
  water"); a command it cannot parse answers ``NOT_UNDERSTOOD`` without ticking the world,
  which sets ``Observation.understood`` to False.
- If the JVM dies mid-episode, the adapter starts a new one, reloads the task and replays
  the episode's actions, so the trial continues from the same state.
"""

from __future__ import annotations

import difflib
import logging
import os
import re
import shutil
import signal
import time
from typing import Any

from pydantic import Field
from typing_extensions import Self

from .base import (
    BadVariation,
    EnvCrashed,
    EnvError,
    EnvUnavailable,
    Observation,
    TaskInfo,
    UnknownTask,
)

log = logging.getLogger(__name__)

JAVA_HELP = (
    "ScienceWorld needs Java (17 recommended) and `java` was not found on PATH: "
    "install it, e.g. `sudo apt-get install default-jre-headless` on Debian/Ubuntu "
    "or `brew install openjdk@17` on macOS"
)
_AMBIGUOUS = "Ambiguous request"
# The parser's answer when no template x object referent matches; the world does not tick.
NOT_UNDERSTOOD = "No known action matches that input."
_CHOICE = re.compile(r"^\s*(\d+):\s*(.+?)\s*$")
# Enough for the longest episodes we allow; the agent enforces its own step limit.
_ENV_STEP_LIMIT = 100_000


class SWObservation(Observation):
    choices: list[str] = Field(default_factory=list)  # numbered options of an ambiguous request


def parse_choices(text: str) -> list[str]:
    """Options of an 'Ambiguous request' answer, in order (index = number to reply)."""
    if _AMBIGUOUS not in text:
        return []
    out: list[str] = []
    for line in text.splitlines():
        m = _CHOICE.match(line)
        if m:
            out.append(m.group(2))
    return out


def _close_env(env: Any) -> None:
    """Close one ScienceWorldEnv and wait for its JVM. A dead JVM's gateway is first marked
    disconnected: py4j's shutdown retries itself without bound on a refused connection (a
    RecursionError, which on CPython 3.11 also corrupts the recursion counter: a later
    ``ast.parse`` fails with 'AST constructor recursion depth mismatch'); the env's
    ``__del__`` would do the same when it is collected."""
    proc = env._gateway.java_process
    if proc.poll() is not None:
        env._gateway._gateway_client.is_connected = False
    try:
        env.close()
    except Exception:
        log.debug("closing ScienceWorld failed", exc_info=True)
    try:
        proc.wait(timeout=5)
    except Exception:  # noqa: BLE001
        os.kill(proc.pid, signal.SIGKILL)


def _py4j_errors() -> tuple[type[BaseException], ...]:
    from py4j.protocol import Py4JError

    return (Py4JError, ConnectionError, OSError, EOFError)


class ScienceWorld:
    """One ScienceWorld simulator (one JVM). Not thread-safe; use one per process."""

    name = "scienceworld"

    def __init__(self, simplification: str = "easy", *, max_restarts: int = 3) -> None:
        self.simplification = simplification
        self.max_restarts = max_restarts
        self.restarts = 0
        self._env: Any = None
        self._task: str | None = None
        self._variation: int | None = None
        self._actions: list[str] = []
        self._scores: list[float] = []  # score after each action, to verify a replay
        self._done = False
        self._tasks_cache: list[TaskInfo] | None = None

    # ------------------------------------------------------------------ lifecycle
    def _start(self) -> Any:
        if self._env is None:
            if shutil.which("java") is None:
                raise EnvUnavailable(JAVA_HELP)
            try:
                from scienceworld import ScienceWorldEnv
            except ImportError as exc:  # pragma: no cover - declared dependency
                raise EnvUnavailable(f"the scienceworld package is not installed ({exc})") from None
            try:
                self._env = ScienceWorldEnv("", envStepLimit=_ENV_STEP_LIMIT)
            except Exception as exc:  # noqa: BLE001 - py4j raises plain Exception if the JVM won't start
                raise EnvUnavailable(f"could not start the ScienceWorld JVM: {exc}") from None
        return self._env

    @property
    def java_pid(self) -> int | None:
        """PID of the JVM, e.g. for fault-injection tests."""
        if self._env is None:
            return None
        return self._env._gateway.java_process.pid

    def close(self) -> None:
        env, self._env = self._env, None
        if env is not None:
            _close_env(env)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ tasks
    def tasks(self) -> list[TaskInfo]:
        if self._tasks_cache is None:
            env = self._start()
            self._tasks_cache = [
                TaskInfo(name=n, variations=int(env.get_max_variations(n)))
                for n in env.get_task_names()
            ]
        return self._tasks_cache

    def check(self, task: str, variation: int) -> TaskInfo:
        """Validate a task name and variation; raise a helpful error if either is wrong."""
        by_name = {t.name: t for t in self.tasks()}
        if task not in by_name:
            close = difflib.get_close_matches(task, list(by_name), n=3, cutoff=0.5)
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            raise UnknownTask(f"unknown task {task!r}.{hint} (`clin tasks` lists all 30)")
        info = by_name[task]
        if not 0 <= variation < info.variations:
            raise BadVariation(
                f"variation {variation} is out of range for {task}: "
                f"choose 0..{info.variations - 1}"
            )
        return info

    def split(self, task: str, which: str) -> list[int]:
        """ScienceWorld's train/dev/test variation ids for a task."""
        env = self._start()
        env.load(task, 0, self.simplification, generateGoldPath=False)
        fn = {
            "train": env.get_variations_train,
            "dev": env.get_variations_dev,
            "test": env.get_variations_test,
        }[which]
        return [int(v) for v in fn()]

    def task_description(self) -> str:
        return str(self._start().get_task_description())

    def gold_length(self, task: str, variation: int) -> int:
        """Actions on the simulator's gold path for (task, variation): an evaluation bound
        (the CLIN authors capped a trial at 1.5 x this), never shown to the agent. Loads the
        task, so call it before ``reset``, not during an episode."""
        self.check(task, variation)
        env = self._start()
        env.load(task, variation, self.simplification, generateGoldPath=True)
        path = [str(a) for a in env.get_gold_action_sequence()]
        if not path or path[0].startswith("ERROR"):
            raise EnvError(f"ScienceWorld gave no gold path for {task} variation {variation}")
        self._task = None  # the loaded state is not an episode: reset() before step()
        return len(path)

    # ------------------------------------------------------------------ episode
    def reset(self, task: str, variation: int) -> SWObservation:
        self.check(task, variation)
        self._task, self._variation = task, variation
        self._actions, self._scores = [], []
        self._done = False
        return self._guard(self._load)

    def _load(self) -> SWObservation:
        env = self._start()
        env.load(self._task, self._variation, self.simplification, generateGoldPath=False)
        obs, info = env.reset()
        return self._observation(obs, 0, False, info)

    def step(self, action: str) -> SWObservation:
        if self._task is None:
            raise EnvError("call reset() before step()")
        if self._done:
            raise EnvError("the episode is over; call reset() to start another")
        result = self._guard(lambda: self._step(action))
        self._actions.append(action)
        self._scores.append(result.score)
        return result

    def _step(self, action: str) -> SWObservation:
        obs, reward, completed, info = self._start().step(action)
        result = self._observation(obs, reward, completed, info)
        self._done = result.done
        return result

    def _guard(self, fn: Any) -> SWObservation:
        """Run ``fn``; if the JVM died, restart it, replay the episode, and retry once."""
        try:
            return fn()
        except _py4j_errors() as exc:
            if self.restarts >= self.max_restarts:
                self.close()  # a later reset() starts a new JVM
                raise EnvCrashed(
                    f"ScienceWorld crashed {self.restarts + 1} times in this process ({exc})"
                ) from None
            self.restarts += 1
            log.warning("ScienceWorld JVM died (%s); restarting and replaying %d actions",
                        exc, len(self._actions))
            self.close()
            t0 = time.perf_counter()
            self._load()
            env = self._env
            for i, (past, score) in enumerate(zip(self._actions, self._scores), 1):
                _, _, _, info = env.step(past)
                if float(info.get("score", 0)) != score:
                    raise EnvCrashed(
                        f"ScienceWorld crashed and the replay diverged at action {i} "
                        f"({past!r}: score {info.get('score')} instead of {score})"
                    ) from None
            log.warning("replayed in %.1fs", time.perf_counter() - t0)
            return fn()

    @staticmethod
    def _observation(obs: str, reward: Any, completed: bool, info: dict[str, Any]) -> SWObservation:
        return SWObservation(
            text=str(obs).strip(),
            look=str(info.get("look", "")).strip(),
            inventory=str(info.get("inv", "")).strip(),
            score=float(info.get("score", 0)),
            reward=float(reward or 0),
            done=bool(completed),
            valid_actions=list(info.get("valid", [])),
            moves=int(info.get("moves", 0)),
            choices=parse_choices(str(obs)),
            understood=str(obs).strip() != NOT_UNDERSTOOD,
        )
