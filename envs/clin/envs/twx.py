"""TextWorldExpress (``textworld-express``, by the ScienceWorld authors) behind
:class:`clin.envs.base.TextEnv`: 8 games, each a task.

- Variations are the games' fixed seeds: train seeds first, then dev, then test (1,000
  each), so variation ``i`` is one seed and ``split(task, "test")`` lists the test ones.
- Its 0..1 score is shown 0..100. A game ends ``done`` when it is won or lost; the profile's
  failure rule is "done below 100" (the step limit is the agent's, never the game's).
- Game parameters (``numLocations=5`` ...) apply to every game that has them and are checked
  against the games' own lists; unset ones keep the games' defaults (:data:`GAMES`).
- A command the game does not know answers "Unknown action: ..." without changing the
  world (``understood`` False); the games never ask to choose between objects.
- If the JVM dies mid-episode it is restarted and the episode replayed
  (:class:`clin.envs.jvm.CrashReplay`, as for ScienceWorld).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import (
    BadVariation,
    EnvError,
    EnvProfile,
    EnvUnavailable,
    Observation,
    TaskInfo,
    find_task,
)
from .jvm import JvmEnv

JAVA_HELP = (
    "TextWorldExpress needs Java (17 recommended) and `java` was not found on PATH: install "
    "it, e.g. `sudo apt-get install default-jre-headless` on Debian/Ubuntu"
)
UNKNOWN_PREFIX = "Unknown action"
SPLITS = ("train", "dev", "test")
_ENV_STEP_LIMIT = 100_000  # the agent enforces its own

# game -> (one-line description, its parameters with the games' own defaults)
GAMES: dict[str, tuple[str, dict[str, int]]] = {
    "cookingworld": ("find the recipe, gather and prepare the ingredients, cook the meal",
                     {"numLocations": 11, "numIngredients": 3, "numDistractorItems": 10,
                      "includeDoors": 1, "limitInventorySize": 1}),
    "twc": ("tidy up: put objects back where they belong",
            {"numLocations": 3, "numItemsToPutAway": 4, "includeDoors": 0,
             "limitInventorySize": 0}),
    "coin": ("explore the rooms and take the coin",
             {"numLocations": 11, "numDistractorItems": 0, "includeDoors": 1,
              "limitInventorySize": 1}),
    "mapreader": ("read the map, fetch the coin and put it in the box",
                  {"numLocations": 15, "maxDistanceApart": 4,
                   "maxDistractorItemsPerLocation": 3, "includeDoors": 0,
                   "limitInventorySize": 0}),
    "arithmetic": ("solve the math problem, put the item with that quantity in the box", {}),
    "sorting": ("put the objects in the box from the smallest quantity up", {}),
    "simonsays": ("do exactly what Simon says", {"gameLength": 5, "numDistractors": 3}),
    "peckingorder": ("follow the instructions book, one step at a time", {}),
}

PROFILE = EnvProfile(
    world="TextWorld Express, a text game",
    action_templates=(
        "look around", "inventory", "task", "move DIRECTION", "open door to DIRECTION",
        "close door to DIRECTION", "open OBJ", "close OBJ", "take OBJ", "put OBJ in OBJ",
        "examine OBJ", "read OBJ", "cook OBJ in OBJ", "slice OBJ", "chop OBJ", "dice OBJ",
        "prepare meal", "eat OBJ", "touch OBJ", "smell OBJ",
    ),
    hints=(
        ("Only the objects and exits you can see can be used; a command the game does not know "
        'answers "Unknown action" and nothing happens.'),
        ('"move north" (east, south, west) goes through an exit; a closed door must be opened '
        'first ("open door to north").'),
        ("Read what the task points you to (a cookbook, a map, a math problem, an instructions "
        "book) before acting on it."),
    ),
    verbs=(
        "look around", "inventory", "task", "move", "open door to", "close door to", "open",
        "close", "take", "put", "examine", "read", "cook", "slice", "chop", "dice", "prepare",
        "eat", "touch", "smell",
    ),
    synonyms=(
        (r"^(go|walk|head|travel|run) (to )?(the )?(north|south|east|west)$", r"move \4"),
        (r"^(go|walk|head|travel|run|move) (north|south|east|west)ward$", r"move \2"),
        (r"^(go|walk|head|travel|run) ", "move "),
        (r"^(north|south|east|west)$", r"move \1"),
        (r"^(pick up|grab|get|collect) ", "take "),
        (r"^take (.+) from .+$", r"take \1"),
        (r"^(place|insert|drop|put) (.+) (into|inside|onto|on|in) ", r"put \2 in "),
        (r"^(look|l)$", "look around"),
        (r"^(check )?(inventory|inv|i)$", "inventory"),
        (r"^(look at|inspect|check|x) ", "examine "),
        (r"^(cook|roast|fry|bake|grill) (.+) (in|on|with|using|over) ", r"cook \2 in "),
        (r"^(consume|devour) ", "eat "),
    ),
    opposites=(("open", "close"),),
    always_valid=("look around", "inventory", "task"),
    room_pattern=r"^\s*You are in the ([^.]{1,60})\.",
    failed=lambda score, done: done and score < 100,
)


def _game_params(params: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    """Per game, the given parameters it has; every name must belong to some game and every
    value be a whole number."""
    known = {k for _, p in GAMES.values() for k in p}
    unknown = sorted(set(params) - known)
    if unknown:
        raise EnvError(f"unknown TextWorldExpress game parameter {unknown[0]!r}: "
                       f"choose from {', '.join(sorted(known))}")
    values: dict[str, int] = {}
    for k, v in params.items():
        try:
            values[k] = int(v)
        except (TypeError, ValueError):
            raise EnvError(f"game parameter {k} must be a whole number, not {v!r}") from None
    return {g: {k: v for k, v in values.items() if k in p} for g, (_, p) in GAMES.items()}


class TWObservation(Observation):
    pass


class TextWorldExpress(JvmEnv):
    """One TextWorldExpress simulator (one JVM, ~80 MB). Not thread-safe."""

    name = "textworld-express"
    profile = PROFILE
    label = "TextWorldExpress"
    java_help = JAVA_HELP

    def __init__(self, *, max_restarts: int = 3, **game_params: Any) -> None:
        super().__init__(max_restarts=max_restarts)
        self.game_params = _game_params(game_params)
        self._seeds: dict[str, list[int]] | None = None
        self._checked: set[str] = set()  # games whose parameters the game accepted
        self._description = ""
        self._score = 0.0

    def _launch(self) -> Any:
        try:
            from textworld_express import TextWorldExpressEnv
        except ImportError as exc:  # pragma: no cover - declared dependency
            raise EnvUnavailable(
                f"the textworld-express package is not installed ({exc})") from None
        return TextWorldExpressEnv(envStepLimit=_ENV_STEP_LIMIT)

    # ------------------------------------------------------------------ tasks
    def _seed_lists(self) -> dict[str, list[int]]:
        if self._seeds is None:
            env = self._start()
            self._seeds = {"train": [int(s) for s in env.getValidSeedsTrain()],
                           "dev": [int(s) for s in env.getValidSeedsDev()],
                           "test": [int(s) for s in env.getValidSeedsTest()]}
        return self._seeds

    def _seed(self, variation: int) -> tuple[str, int]:
        for fold in SPLITS:
            seeds = self._seed_lists()[fold]
            if variation < len(seeds):
                return fold, seeds[variation]
            variation -= len(seeds)
        raise BadVariation(f"variation {variation} is out of range")

    def tasks(self) -> list[TaskInfo]:
        n = sum(len(s) for s in self._seed_lists().values())
        return [TaskInfo(name=g, variations=n, description=d) for g, (d, _) in GAMES.items()]

    def check(self, task: str, variation: int) -> TaskInfo:
        # an unknown game is refused before the JVM starts (self.tasks() reads its seeds)
        known = self.tasks() if task in GAMES else [TaskInfo(name=g, variations=0)
                                                    for g in GAMES]
        info = find_task(known, task, variation, more=f" (games: {', '.join(GAMES)})")
        if task not in self._checked:  # the game's own check of its parameter values
            try:
                self._start().load(task, self._params(task))
            except ValueError as exc:
                raise EnvError(f"{task}: {exc}".strip()) from None
            self._checked.add(task)
        return info

    def _params(self, task: str) -> str:
        return ",".join(f"{k}={v}" for k, v in self.game_params[task].items())

    def split(self, task: str, which: str) -> list[int]:
        """Variation ids of the game's train, dev or test seeds."""
        self.check(task, 0)
        seeds = self._seed_lists()
        start = sum(len(seeds[f]) for f in SPLITS[: SPLITS.index(which)])
        return list(range(start, start + len(seeds[which])))

    def task_description(self) -> str:
        if self._task is None:
            raise EnvError("call reset() before task_description()")
        return self._description

    def gold_length(self, task: str, variation: int) -> int:
        return len(self.gold_actions(task, variation))

    def gold_actions(self, task: str, variation: int) -> list[str]:
        """The game's own solution (an evaluation bound, never shown to the agent)."""
        self.check(task, variation)
        env = self._start()
        self._task, self._variation = task, variation
        self._reset_raw(gold=True)
        self._task = None  # not an episode: reset() before step()
        return [str(a) for a in env.getGoldActionSequence()]

    # ------------------------------------------------------------------ episode
    def _reset_raw(self, gold: bool = False) -> tuple[str, dict[str, Any]]:
        assert self._task is not None
        fold, seed = self._seed(self._variation)
        try:
            return self._start().reset(seed=seed, gameFold=fold, gameName=self._task,
                                       gameParams=self._params(self._task),
                                       generateGoldPath=gold)
        except ValueError as exc:  # the game refused a parameter value
            raise EnvError(f"{self._task}: {exc}".strip()) from None

    def _load(self) -> TWObservation:
        obs, info = self._reset_raw()
        self._description = str(info.get("taskDescription", "")).strip()
        self._score = 0.0
        return self._observation(obs, info)

    def _step(self, action: str) -> TWObservation:
        obs, _, _, info = self._start().step(action)
        return self._observation(obs, info)

    def _replay_step(self, action: str) -> float:
        return self._step(action).score

    def _observation(self, obs: str, info: dict[str, Any]) -> TWObservation:
        score = round(float(info.get("score", 0)) * 100, 6)
        reward, self._score = score - self._score, score
        text = str(obs).strip()
        return TWObservation(
            text=text,
            look=str(info.get("look", "")).strip(),
            inventory=str(info.get("inventory", "")).strip(),
            score=score,
            reward=reward,
            done=bool(info.get("done", False)),
            valid_actions=[str(a) for a in info.get("validActions", [])],
            moves=int(info.get("numMoves", 0)),
            understood=not text.startswith(UNKNOWN_PREFIX),
        )
