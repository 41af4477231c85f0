"""The few calls an agent needs from a text environment, as a Protocol with plain data."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, Field
from typing_extensions import Self


class EnvError(Exception):
    """Base class for environment errors; the message says what the user can do."""


class UnknownTask(EnvError):
    pass


class BadVariation(EnvError):
    pass


class EnvUnavailable(EnvError):
    """The environment cannot start (e.g. Java is missing)."""


class EnvCrashed(EnvError):
    """The environment process died mid-episode."""


class Observation(BaseModel):
    """What the agent sees after reset or a step."""

    text: str  # the direct response to the last action (or the intro after reset)
    look: str = ""  # the current room description
    inventory: str = ""
    score: float = 0.0  # cumulative task score, 0..100 (negative when the task failed)
    reward: float = 0.0
    done: bool = False
    valid_actions: list[str] = Field(default_factory=list)
    moves: int = 0
    # False when the environment's own parser did not understand the command and nothing
    # happened (the agent may then ground the proposal otherwise and try again this step).
    understood: bool = True


class TaskInfo(BaseModel):
    name: str
    variations: int
    description: str = ""


def _failed_below_zero(score: float, done: bool) -> bool:
    return score < 0


# Words that join object names in a command ("apple seed in seed jar to flower pot 3").
JOINERS = frozenset({"in", "on", "to", "into", "containing", "and", "with", "from", "of",
                     "the", "a", "an", "some"})


@dataclass(frozen=True)
class EnvProfile:
    """Everything the agent, the executor and the reflection must know about one world, so
    that none of them names a world. Plain data: an env brings its own (``TextEnv.profile``);
    the defaults suit a text game with no special rules.

    ``synonyms`` are (regex, replacement) pairs applied in order to a lower-cased command
    with punctuation removed; ``verbs`` are the template verb phrases after that; the object
    of a ``protected`` verb is never swapped for a close match (ScienceWorld's ``focus on``:
    a wrong focus ends the task); ``moves`` are interchangeable ways to go somewhere;
    ``room_pattern``'s first group names the room a full view describes; ``failed(score,
    done)`` tells a failed episode from an unfinished one (scores are 0..100)."""

    world: str = "a text game"
    action_templates: tuple[str, ...] = ()
    hints: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ()
    synonyms: tuple[tuple[str, str], ...] = ()
    opposites: tuple[tuple[str, str], ...] = ()
    moves: tuple[str, ...] = ()
    always_valid: tuple[str, ...] = ()
    protected: tuple[str, ...] = ()
    joiners: frozenset[str] = field(default=JOINERS)
    room_pattern: str | None = None
    failed: Callable[[float, bool], bool] = _failed_below_zero


DEFAULT_PROFILE = EnvProfile()


@runtime_checkable
class TextEnv(Protocol):
    """A text environment: load a task variation, then step with actions. ``profile`` says
    how its world reads and plays (see :class:`EnvProfile`)."""

    name: str
    profile: EnvProfile

    def tasks(self) -> list[TaskInfo]: ...

    def reset(self, task: str, variation: int) -> Observation: ...

    def step(self, action: str) -> Observation: ...

    def task_description(self) -> str: ...

    def close(self) -> None: ...


class ClosesOnExit:
    """A base for envs: ``with env:`` calls ``close`` when the block ends, however it ends (a
    simulator holds a JVM). The subclass defines ``close``."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------- optional capabilities
@runtime_checkable
class HasSplits(Protocol):
    """Train/dev/test variation ids of a task (what GEN evals plan with)."""

    def split(self, task: str, which: str) -> list[int]: ...


@runtime_checkable
class HasGoldPaths(Protocol):
    """The simulator's own solution of a (task, variation): an evaluation bound (trial length
    cap, ceiling replays), never shown to the agent. Both load the task: call them before
    ``reset``, not during an episode."""

    def gold_length(self, task: str, variation: int) -> int: ...

    def gold_actions(self, task: str, variation: int) -> list[str]: ...


@runtime_checkable
class ChecksTasks(Protocol):
    """Validates a task and variation with a helpful message (``UnknownTask``,
    ``BadVariation``) without starting an episode."""

    def check(self, task: str, variation: int) -> TaskInfo: ...


@runtime_checkable
class NumberedChoices(Protocol):
    """An observation that may carry numbered options (an ambiguous command); the next
    step answers with the option's number."""

    choices: list[str]


def check_task(env: TextEnv, task: str, variation: int) -> TaskInfo:
    """``env.check`` when it has one, else a check against ``env.tasks()``."""
    if isinstance(env, ChecksTasks):
        return env.check(task, variation)
    return find_task(env.tasks(), task, variation, where=f" in {env.name}")


def find_task(infos: Iterable[TaskInfo], task: str, variation: int, *, where: str = "",
              more: str = "") -> TaskInfo:
    """The task named ``task`` among ``infos``, its ``variation`` in range; else
    ``UnknownTask`` (with close names, ``where`` after the name and ``more`` at the end of
    the line) or ``BadVariation``: the messages every env gives."""
    by_name = {t.name: t for t in infos}
    if task not in by_name:
        close = difflib.get_close_matches(task, list(by_name), n=3, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise UnknownTask(f"unknown task {task!r}{where}.{hint}{more}")
    info = by_name[task]
    if not 0 <= variation < info.variations:
        raise BadVariation(f"variation {variation} is out of range for {task}: "
                           f"choose 0..{info.variations - 1}")
    return info
