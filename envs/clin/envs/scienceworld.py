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

import logging
import re
from typing import Any

from pydantic import Field

from .base import (
    EnvError,
    EnvProfile,
    EnvUnavailable,
    Observation,
    TaskInfo,
    find_task,
)
from .jvm import JvmEnv

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


# What the agent must know about ScienceWorld (see clin.envs.base.EnvProfile). The hints are
# the CLIN paper's, with what its authors' prompt left implicit.
PROFILE = EnvProfile(
    world="ScienceWorld, a text simulation of an elementary-school science lab",
    action_templates=(
        "open OBJ", "close OBJ", "activate OBJ", "deactivate OBJ", "connect OBJ to OBJ",
        "disconnect OBJ", "use OBJ [on OBJ]", "look around", "look at OBJ", "look in OBJ",
        "read OBJ", "move OBJ to OBJ", "pick up OBJ", "put down OBJ", "pour OBJ into OBJ",
        "dunk OBJ into OBJ", "mix OBJ", "teleport to LOC", "go to LOC", "eat OBJ", "flush OBJ",
        "focus on OBJ", "wait", "wait1", "inventory",
    ),
    hints=(
        ('"focus on OBJ" tells the simulator what the task is about. Use it only when the task '
        "says to focus on something, only on that thing, and only as many times as the task "
        "mentions focus: a focus on a wrong object ends the task as failed."),
        ("Some effects take time (heating, cooling, melting, boiling, growing, a plant "
        'producing fruit): after the action that starts them, "wait" (10 steps) or "wait1" '
        "(1 step), then look again."),
        ('"mix OBJ": OBJ is the container the things to be mixed are in (e.g. "mix cup"); move '
        "them into one container first."),
        ('To change where something is, "move OBJ to OBJ" (e.g. "move seed to flower pot"); '
        '"look in OBJ" shows what a container holds. Doors must be open before you can go '
        "through them."),
        ('If the simulator answers with numbered options ("Ambiguous request"), answer with '
        "the number of the one you mean."),
    ),
    verbs=(
        "pick up", "put down", "look at", "look in", "look around", "focus on", "teleport to",
        "go to", "open", "close", "activate", "deactivate", "connect", "disconnect", "use",
        "read", "move", "pour", "dunk", "mix", "eat", "flush", "wait1", "wait", "inventory",
        "task",
    ),
    # The verbs models use for ScienceWorld's actions (python -m bench ceiling --phrasing
    # natural proposes gold plans this way).
    synonyms=(
        (r"^(go|walk|head|run|travel) (to )?(the )?", "go to "),
        (r"^(take|grab|get|collect) ", "pick up "),
        (r"^(turn on|switch on|power on|start) ", "activate "),
        (r"^(turn off|switch off|power off|stop) ", "deactivate "),
        (r"^look$", "look around"),
        (r"^(examine|inspect|check) ", "look at "),
        (r"^(put(?! down )|place|transfer|insert) (.+) (in|into|inside|on|onto|to) ",
         r"move \2 to "),
        (r"^pour (.+) (in|on|onto) ", r"pour \1 into "),
    ),
    opposites=(("open", "close"), ("activate", "deactivate")),
    moves=("go to", "teleport to"),
    # Commands ScienceWorld accepts that are not always listed among the valid combinations.
    always_valid=("look around", "inventory", "wait", "wait1", "task"),
    protected=("focus on",),
    joiners=frozenset({"in", "on", "to", "into", "containing", "and", "with", "from", "of",
                       "called", "substance", "stage", "the", "a", "an", "some"}),
    room_pattern=r"^\s*This room is called the ([^.]{1,60})\.",
)


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


class ScienceWorld(JvmEnv):
    """One ScienceWorld simulator (one JVM). Not thread-safe; use one per process."""

    name = "scienceworld"
    profile = PROFILE
    label = "ScienceWorld"
    java_help = JAVA_HELP

    def __init__(self, simplification: str = "easy", *, max_restarts: int = 3) -> None:
        super().__init__(max_restarts=max_restarts)
        self.simplification = simplification
        self._tasks_cache: list[TaskInfo] | None = None

    def _launch(self) -> Any:
        try:
            from scienceworld import ScienceWorldEnv
        except ImportError as exc:  # pragma: no cover - declared dependency
            raise EnvUnavailable(f"the scienceworld package is not installed ({exc})") from None
        return ScienceWorldEnv("", envStepLimit=_ENV_STEP_LIMIT)

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
        return find_task(self.tasks(), task, variation, more=" (`clin tasks` lists all 30)")

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
        return len(self.gold_actions(task, variation))

    def gold_actions(self, task: str, variation: int) -> list[str]:
        """The simulator's gold path for (task, variation), as it gives it (numbers answer
        its ambiguous requests)."""
        self.check(task, variation)
        env = self._start()
        env.load(task, variation, self.simplification, generateGoldPath=True)
        path = [str(a) for a in env.get_gold_action_sequence()]
        if not path or path[0].startswith("ERROR"):
            raise EnvError(f"ScienceWorld gave no gold path for {task} variation {variation}")
        self._task = None  # the loaded state is not an episode: reset() before step()
        return path

    # ------------------------------------------------------------------ episode
    def _load(self) -> SWObservation:
        env = self._start()
        env.load(self._task, self._variation, self.simplification, generateGoldPath=False)
        obs, info = env.reset()
        return self._observation(obs, 0, False, info)

    def _step(self, action: str) -> SWObservation:
        obs, reward, completed, info = self._start().step(action)
        return self._observation(obs, reward, completed, info)

    def _replay_step(self, action: str) -> float:
        _, _, _, info = self._start().step(action)
        return float(info.get("score", 0))

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
