"""Text environments behind one small protocol (:class:`clin.envs.base.TextEnv`)."""

from .base import (
    BadVariation,
    EnvCrashed,
    EnvError,
    EnvUnavailable,
    Observation,
    TaskInfo,
    TextEnv,
    UnknownTask,
)

__all__ = [
    "BadVariation",
    "EnvCrashed",
    "EnvError",
    "EnvUnavailable",
    "Observation",
    "TaskInfo",
    "TextEnv",
    "UnknownTask",
]
