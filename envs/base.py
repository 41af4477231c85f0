"""The few calls an agent needs from a text environment, as a Protocol with plain data."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from pydantic import BaseModel, Field


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


@runtime_checkable
class TextEnv(Protocol):
    """A text environment: load a task variation, then step with actions."""

    name: str

    def tasks(self) -> list[TaskInfo]: ...

    def reset(self, task: str, variation: int) -> Observation: ...

    def step(self, action: str) -> Observation: ...

    def task_description(self) -> str: ...

    def close(self) -> None: ...
