"""Text environments behind one small protocol (:class:`clin.envs.base.TextEnv`), made by
name (:func:`make`); each brings its :class:`EnvProfile`."""

from . import registry
from .base import (
    DEFAULT_PROFILE,
    BadVariation,
    ChecksTasks,
    EnvCrashed,
    EnvError,
    EnvProfile,
    EnvUnavailable,
    HasGoldPaths,
    HasSplits,
    NumberedChoices,
    Observation,
    TaskInfo,
    TextEnv,
    UnknownTask,
    check_task,
)
from .registry import ENTRY_POINT_GROUP, UnknownEnv, canonical, make, names, register

__all__ = [
    "DEFAULT_PROFILE",
    "ENTRY_POINT_GROUP",
    "BadVariation",
    "ChecksTasks",
    "EnvCrashed",
    "EnvError",
    "EnvProfile",
    "EnvUnavailable",
    "HasGoldPaths",
    "HasSplits",
    "NumberedChoices",
    "Observation",
    "TaskInfo",
    "TextEnv",
    "UnknownEnv",
    "UnknownTask",
    "canonical",
    "check_task",
    "make",
    "names",
    "register",
    "registry",
]
