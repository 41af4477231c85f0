"""TinyWorld: a small deterministic text world behind :class:`clin.envs.base.TextEnv`.

Pure Python, no dependencies, instant to start: it proves the agent and the memory do not
depend on ScienceWorld, and keeps the agent-loop tests and the examples free of Java. It
behaves like ScienceWorld where an agent can tell the difference:

- four rooms (hallway, kitchen, greenhouse, outside) joined by doors that start closed;
  ``teleport to ROOM`` is offered only when built with ``teleport=True``;
- objects in containers (open/close, pick up, put down, move X to Y, activate/deactivate);
- a scored multi-step goal per task: partial scores along the way, 100 and ``done`` at the
  end, -100 and ``done`` for a wrong ``focus on``; ``step`` after ``done`` raises;
- ``valid_actions`` at every state; an unknown command answers "No known action matches
  that input." (``understood`` False); a name that fits two objects answers ScienceWorld's "Ambiguous request"
  with numbered options (in ``choices``), and the next step answers with the number;
- four tasks with 8 variations each, and train/dev/test splits of the variations.

Time passes with every action (``wait`` lets ten ticks pass, ``wait1`` one): seeds in a
watered flower pot grow, water on an active stove boils.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import Field
from typing_extensions import Self

from . import scienceworld
from .base import ClosesOnExit, EnvError, Observation, TaskInfo, find_task

ROOMS = ("hallway", "kitchen", "greenhouse", "outside")
DOORS = (("hallway", "kitchen"), ("hallway", "greenhouse"), ("greenhouse", "outside"),
         ("kitchen", "outside"))
UNKNOWN = "No known action matches that input."
AMBIGUOUS = ("Ambiguous request: Please enter the number for the action you intended "
             "(or blank to cancel):")
WAIT_TICKS = 10
GROW_TICKS = 3  # ticks a watered seed needs to become a plant
BOIL_TICKS = 3  # ticks water on an active stove needs to boil

ANIMALS = ("bee", "frog", "butterfly", "snail")
PLANTS = ("banana", "lemon", "pea", "rose")
SEEDS = ("apple", "orange", "pea", "bean")
BOXES = (("red", "kitchen"), ("green", "hallway"))
# The verbs that switch a two-state field of a Thing: verb -> (the field, the field that
# allows it, the state it sets, the words of "can't be ...", "is already ...", "is now ...").
SWITCHES = {
    "open": ("is_open", "openable", True, ("opened", "open", "open")),
    "close": ("is_open", "openable", False, ("closed", "closed", "closed")),
    "activate": ("active", "device", True, ("activated", "on", "activated")),
    "deactivate": ("active", "device", False, ("deactivated", "off", "deactivated")),
}


# TinyWorld reads and plays like ScienceWorld: the same verbs, rooms and focus rule.
PROFILE = replace(
    scienceworld.PROFILE,
    world="TinyWorld, a small text world of four rooms",
    action_templates=(
        "open OBJ", "close OBJ", "activate OBJ", "deactivate OBJ", "look around",
        "look at OBJ", "move OBJ to OBJ", "pick up OBJ", "put down OBJ", "go to LOC",
        "open door to LOC", "close door to LOC", "focus on OBJ", "wait", "wait1", "inventory",
    ),
    hints=tuple(h for h in scienceworld.PROFILE.hints if not h.startswith('"mix OBJ"')),
)


class TinyObservation(Observation):
    choices: list[str] = Field(default_factory=list)  # numbered options of an ambiguous request


@dataclass(eq=False)
class Thing:
    name: str
    container: bool = False  # other things can be inside (or on) it
    surface: bool = False  # things are "on" it rather than "in" it
    openable: bool = False
    is_open: bool = True
    portable: bool = True
    device: bool = False
    active: bool = False
    living: bool = False
    plant: bool = False
    contents: list[Thing] = field(default_factory=list)
    parent: Thing | None = None
    ticks: int = 0  # growth of a seed, heat of water

    def add(self, *things: Thing) -> Self:
        for t in things:
            if t.parent is not None:
                t.parent.contents.remove(t)
            t.parent = self
            self.contents.append(t)
        return self

    @property
    def reachable_inside(self) -> bool:
        return self.container and (self.is_open or not self.openable)

    def where(self) -> str:
        """'in seed jar, in greenhouse': how ScienceWorld tells same-named things apart."""
        out, p = [], self.parent
        while p is not None:
            out.append(("on " if p.surface else "in ") + p.name)
            p = p.parent
        return ", ".join(out)

    def describe(self) -> str:
        text = _a(self.name)
        if self.device:
            text += f", which is {'on' if self.active else 'off'}"
        if self.container:
            if not self.reachable_inside:
                return text + " (closed)"
            inside = ", ".join(_a(c.name) for c in self.contents) or "nothing"
            text += f". {'On' if self.surface else 'In'} the {self.name} is: {inside}"
        return text


def _a(name: str) -> str:
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


def _box(name: str, **kw: Any) -> Thing:
    return Thing(name, container=True, **kw)


def _fixed(name: str, **kw: Any) -> Thing:
    return Thing(name, portable=False, **kw)


Goal = tuple[float, Callable[[], bool]]


@dataclass
class Task:
    name: str
    describe: Callable[[int], str]
    build: Callable[[World, int], None]
    # (score, reached?) in increasing order, given the world, the variation and the task's
    # focus test; reaching the last one (100) ends the task as a success
    goals: Callable[[World, int, Callable[[Thing], bool]], list[Goal]]
    right_focus: Callable[[World, Thing, int], bool]
    variations: int = 8


class World:
    """The rooms, the things and the agent of one episode."""

    def __init__(self) -> None:
        self.rooms = {r: Thing(r, container=True, portable=False) for r in ROOMS}
        self.doors: dict[frozenset[str], bool] = {frozenset(d): False for d in DOORS}
        self.inventory = Thing("inventory", container=True, portable=False)
        self.here = "hallway"
        self.focus: Thing | None = None
        self.rooms["hallway"].add(_fixed("picture"), _box("coat rack", surface=True,
                                                          portable=False))
        stove = _box("stove", surface=True, portable=False, device=True)
        self.rooms["kitchen"].add(
            _box("table", surface=True, portable=False),
            _box("fridge", openable=True, is_open=False, portable=False).add(Thing("milk")),
            _box("cupboard", openable=True, is_open=False, portable=False),
            stove, _box("sink", portable=False, device=True),
        )
        self.rooms["greenhouse"].add(
            *(_box(f"flower pot {i}") for i in (1, 2, 3)),
            _box("watering can").add(Thing("water")),
            _box("seed jar"),
        )
        self.rooms["outside"].add(_fixed("fence"), _fixed("oak tree", living=True, plant=True))

    def find(self, name: str, room: str | None = None) -> Thing:
        for t in self.all_things():
            if t.name == name and (room is None or self.room_of(t) == room):
                return t
        raise KeyError(name)

    def all_things(self) -> list[Thing]:
        out: list[Thing] = []

        def walk(t: Thing) -> None:
            for c in t.contents:
                out.append(c)
                walk(c)

        for root in (*self.rooms.values(), self.inventory):
            walk(root)
        return out

    def room_of(self, t: Thing) -> str | None:
        while t.parent is not None:
            t = t.parent
        return t.name if t.name in self.rooms else None

    def inside(self, t: Thing, holder: Thing) -> bool:
        p = t.parent
        while p is not None:
            if p is holder:
                return True
            p = p.parent
        return False

    def visible(self) -> list[Thing]:
        """Things the agent can act on: the room's and the inventory's, not inside closed
        containers."""
        out: list[Thing] = []

        def walk(t: Thing) -> None:
            if not t.reachable_inside:
                return
            for c in t.contents:
                out.append(c)
                walk(c)

        walk(self.rooms[self.here])
        walk(self.inventory)
        return out

    def neighbours(self) -> list[str]:
        return [r for r in ROOMS if frozenset((self.here, r)) in self.doors]

    def look(self) -> str:
        room = self.rooms[self.here]
        lines = [f"This room is called the {self.here}. In it, you see:", "\tthe agent"]
        lines += [f"\t{t.describe()}" for t in room.contents]
        lines.append("You also see:")
        for r in self.neighbours():
            state = "open" if self.doors[frozenset((self.here, r))] else "closed"
            lines.append(f"\tA door to the {r} (that is {state})")
        return "\n".join(lines)

    def inventory_text(self) -> str:
        items = [f"\t{t.describe()}" for t in self.inventory.contents] or ["\tnothing"]
        return "\n".join(["In your inventory, you see:", *items])

    def tick(self, n: int) -> None:
        for _ in range(n):
            for t in self.all_things():
                if t.name.endswith(" seed") and t.parent is not None \
                        and t.parent.name.startswith("flower pot") \
                        and any(c.name == "water" for c in t.parent.contents):
                    t.ticks += 1
                    if t.ticks >= GROW_TICKS:
                        t.name, t.plant = t.name.replace(" seed", " plant"), True
                if t.name == "water" and t.parent is not None and t.parent.parent is not None \
                        and t.parent.parent.name == "stove" and t.parent.parent.active:
                    t.ticks += 1
                    if t.ticks >= BOIL_TICKS:
                        t.name = "steam"


# ---------------------------------------------------------------------------- the tasks
def _find_build(kind: str) -> Callable[[World, int], None]:
    def build(w: World, v: int) -> None:
        color, room = BOXES[v % 2]
        w.rooms[room].add(_box(f"{color} box"))
        if kind == "animal":
            w.rooms["outside"].add(Thing(ANIMALS[v // 2], living=True))
        else:
            w.find("flower pot 1").add(Thing(f"{PLANTS[v // 2]} plant", living=True,
                                             plant=True))

    return build


def _find_goals(w: World, v: int, right: Callable[[Thing], bool]) -> list[Goal]:
    box = w.find(f"{BOXES[v % 2][0]} box")
    return [
        (25, lambda: any(right(t) for t in w.visible())),
        (50, lambda: w.focus is not None),
        (75, lambda: w.focus is not None and w.inside(w.focus, w.inventory)),
        (100, lambda: w.focus is not None and w.inside(w.focus, box)),
    ]


def _grow_build(w: World, v: int) -> None:
    seed = SEEDS[v % 4]
    # two seeds of one name: "focus on" or "move" names both, and the env asks which
    w.find("seed jar").add(Thing(f"{seed} seed", living=True))
    w.rooms["greenhouse"].add(_box("seed packet").add(Thing(f"{seed} seed", living=True)))
    w.here = ("hallway", "greenhouse")[v // 4]


def _grow_goals(w: World, v: int, right: Callable[[Thing], bool]) -> list[Goal]:
    def pot() -> Thing | None:
        """The flower pot holding the focused seed, if it is in one."""
        parent = w.focus.parent if w.focus is not None else None
        return parent if parent is not None and parent.name.startswith("flower pot") else None

    return [
        (25, lambda: w.focus is not None),
        (50, lambda: pot() is not None),
        (75, lambda: (p := pot()) is not None and any(c.name == "water" for c in p.contents)),
        (100, lambda: pot() is not None and w.focus is not None and bool(w.focus.plant)),
    ]


def _boil_build(w: World, v: int) -> None:
    holder = w.find(("cupboard", "table")[v % 2])
    holder.add(_box("metal pot").add(Thing("water")))
    w.here = ("hallway", "kitchen", "greenhouse", "outside")[v // 2]


def _boil_goals(w: World, v: int, right: Callable[[Thing], bool]) -> list[Goal]:
    stove = w.find("stove")
    return [
        (25, lambda: w.focus is not None),
        (50, lambda: w.focus is not None and w.inside(w.focus, stove)),
        (75, lambda: w.focus is not None and w.inside(w.focus, stove) and stove.active),
        (100, lambda: w.focus is not None and w.focus.name == "steam"),
    ]


TASKS: dict[str, Task] = {
    t.name: t for t in (
        Task("find-living-thing",
             lambda v: ("Your task is to find a(n) living thing. First, focus on the thing. "
                        f"Then, move it to the {BOXES[v % 2][0]} box in the "
                        f"{BOXES[v % 2][1]}."),
             _find_build("animal"), _find_goals,
             lambda w, t, v: t.living),
        Task("find-plant",
             lambda v: ("Your task is to find a(n) plant. First, focus on the thing. "
                        f"Then, move it to the {BOXES[v % 2][0]} box in the "
                        f"{BOXES[v % 2][1]}."),
             _find_build("plant"), _find_goals,
             lambda w, t, v: t.plant),
        Task("grow-plant",
             lambda v: (f"Your task is to grow a(n) {SEEDS[v % 4]} plant from seed. First, "
                        f"focus on a(n) {SEEDS[v % 4]} seed. Then, move it to a flower pot, "
                        "water it, and wait for it to grow."),
             _grow_build, _grow_goals,
             lambda w, t, v: t.name == f"{SEEDS[v % 4]} seed"),
        Task("boil",
             lambda v: ("Your task is to boil water. First, focus on the water. Then, take "
                        "actions that will cause it to change its state of matter."),
             _boil_build, _boil_goals,
             lambda w, t, v: t.name == "water" and t.parent is not None
             and t.parent.name == "metal pot"),
    )
}


# ---------------------------------------------------------------------------- the env
class TinyWorld(ClosesOnExit):
    """A :class:`~clin.envs.base.TextEnv` over :data:`TASKS`. Deterministic: the same task,
    variation and actions always give the same observations."""

    name = "tiny"
    profile = PROFILE

    def __init__(self, teleport: bool = False) -> None:
        self.teleport = teleport
        self._task: Task | None = None
        self._variation = 0
        self._world: World | None = None
        self._goals: list[Goal] = []
        self._score = 0.0
        self._moves = 0
        self._done = False
        self._pending: list[tuple[str, Callable[[], str]]] = []

    # ------------------------------------------------------------------ tasks
    def tasks(self) -> list[TaskInfo]:
        return [TaskInfo(name=t.name, variations=t.variations, description=t.describe(0))
                for t in TASKS.values()]

    def check(self, task: str, variation: int) -> TaskInfo:
        """Validate a task name and variation, with ScienceWorld's messages."""
        return find_task(self.tasks(), task, variation, more=f" (tasks: {', '.join(TASKS)})")

    def split(self, task: str, which: str) -> list[int]:
        """Train: the first half of the variations; dev: the next quarter; test: the rest."""
        n = self.check(task, 0).variations
        bounds = {"train": (0, n // 2), "dev": (n // 2, 3 * n // 4), "test": (3 * n // 4, n)}
        lo, hi = bounds[which]
        return list(range(lo, hi))

    def task_description(self) -> str:
        if self._task is None:
            raise EnvError("call reset() before task_description()")
        return self._task.describe(self._variation)

    def close(self) -> None:
        self._world = None

    # ------------------------------------------------------------------ episode
    def reset(self, task: str, variation: int) -> TinyObservation:
        self.check(task, variation)
        self._task, self._variation = TASKS[task], variation
        t = self._task
        w = self._world = World()
        t.build(w, variation)
        self._goals = t.goals(w, variation, lambda thing: t.right_focus(w, thing, variation))
        self._score, self._moves, self._done, self._pending = 0.0, 0, False, []
        return self._observe(self.task_description(), 0.0)

    def step(self, action: str) -> TinyObservation:
        if self._world is None or self._task is None:
            raise EnvError("call reset() before step()")
        if self._done:
            raise EnvError("the episode is over; call reset() to start another")
        self._moves += 1
        text = self._answer(action.strip().lower())
        before = self._score
        if self._done:  # a wrong focus
            self._score = -100.0
        else:
            for points, reached in self._goals:
                if points > self._score and reached():
                    self._score = points
            self._done = self._score >= 100
        return self._observe(text, self._score - before)

    def _observe(self, text: str, reward: float) -> TinyObservation:
        w = self._world
        assert w is not None
        return TinyObservation(
            text=text, look=w.look(), inventory=w.inventory_text(), score=self._score,
            reward=reward, done=self._done, valid_actions=self.valid_actions(),
            moves=self._moves, choices=[c for c, _ in self._pending],
            understood=text != UNKNOWN,
        )

    # ------------------------------------------------------------------ actions
    def valid_actions(self) -> list[str]:
        w = self._world
        if w is None:
            return []
        out = ["look around", "inventory", "task", "wait", "wait1"]
        for r in w.neighbours():
            out += [f"go to {r}", f"open door to {r}", f"close door to {r}"]
        if self.teleport:
            out += [f"teleport to {r}" for r in ROOMS if r != w.here]
        things = w.visible()
        holders = [t for t in things if t.reachable_inside]
        for t in things:
            out += [f"look at {t.name}", f"focus on {t.name}"]
            if t.openable:
                out.append(f"close {t.name}" if t.is_open else f"open {t.name}")
            if t.device:
                out.append(f"deactivate {t.name}" if t.active else f"activate {t.name}")
            if t.portable:
                out.append(f"put down {t.name}" if w.inside(t, w.inventory)
                           else f"pick up {t.name}")
                out += [f"move {t.name} to {h.name}" for h in holders
                        if h is not t and not w.inside(h, t)]
        return list(dict.fromkeys(out))

    def _answer(self, action: str) -> str:
        w = self._world
        assert w is not None
        pending, self._pending = self._pending, []
        if pending and action.isdigit():
            i = int(action)
            if i < len(pending):
                result = pending[i][1]()
                w.tick(1)
                return result
        if action in ("wait", "wait1"):
            w.tick(WAIT_TICKS if action == "wait" else 1)
            return "You decide to wait for a while." if action == "wait" else "You wait."
        text = self._do(action)
        w.tick(1)
        return text

    def _do(self, action: str) -> str:
        w = self._world
        assert w is not None
        if action in ("look around", "look"):
            return w.look()
        if action == "inventory":
            return w.inventory_text()
        if action == "task":
            return self.task_description()
        for prefix in ("go to ", "teleport to ", "open door to ", "close door to "):
            if action.startswith(prefix):
                return self._room_action(prefix.strip(), action[len(prefix):])
        if action.startswith("move ") and " to " in action:
            what, _, to = action[5:].partition(" to ")
            return self._choose(action, [(o, h) for o in self._refs(what) for h in self._refs(to)],
                                self._move, two=True)
        verbs: dict[str, Callable[[Thing], str]] = {
            "look at ": lambda t: f"{t.describe()[0].upper()}{t.describe()[1:]}.",
            "focus on ": self._focus,
            "pick up ": lambda t: self._move(t, w.inventory),
            "put down ": lambda t: self._move(t, w.rooms[w.here]),
            "open ": lambda t: self._switch(t, "open"),
            "close ": lambda t: self._switch(t, "close"),
            "activate ": lambda t: self._switch(t, "activate"),
            "deactivate ": lambda t: self._switch(t, "deactivate"),
        }
        for prefix, fn in verbs.items():
            if action.startswith(prefix):
                return self._choose(action, [(t,) for t in self._refs(action[len(prefix):])],
                                    fn)
        return UNKNOWN

    def _refs(self, name: str) -> list[Thing]:
        name = name.strip()
        if name == "inventory":
            return [self._world.inventory]  # type: ignore[union-attr]
        return [t for t in self._world.visible() if t.name == name]  # type: ignore[union-attr]

    def _choose(self, action: str, options: list[tuple[Thing, ...]], fn: Callable[..., str],
                two: bool = False) -> str:
        """Run ``fn`` on the one matching object (pair); offer numbered choices for several."""
        if not options:
            return UNKNOWN
        if len(options) == 1:
            return fn(*options[0])
        verb = action.split(" ")[0] if two else action[: action.index(options[0][0].name)].strip()

        def label(opt: tuple[Thing, ...]) -> str:
            parts = [f"{t.name} ({t.where()})" for t in opt]
            return f"{verb} {parts[0]} to {parts[1]}" if two else f"{verb} {parts[0]}"

        self._pending = [(label(o), (lambda o=o: fn(*o))) for o in options]
        return "\n".join([AMBIGUOUS, *(f"{i}:\t{c}" for i, (c, _) in enumerate(self._pending))])

    def _room_action(self, verb: str, room: str) -> str:
        w = self._world
        assert w is not None
        room = room.strip()
        if room not in ROOMS:
            return UNKNOWN
        if verb == "teleport to":
            if not self.teleport or room == w.here:
                return UNKNOWN
            w.here = room
            return f"You teleport to the {room}."
        door = frozenset((w.here, room))
        if door not in w.doors:
            return UNKNOWN if verb != "go to" else f"There is no door to the {room} here."
        if verb == "go to":
            if not w.doors[door]:
                return f"The door to the {room} is closed."
            w.here = room
            return f"You move to the {room}."
        want = verb == "open door to"
        if w.doors[door] == want:
            return f"The door is already {'open' if want else 'closed'}."
        w.doors[door] = want
        return f"The door is now {'open' if want else 'closed'}."

    def _focus(self, t: Thing) -> str:
        task = self._task
        assert task is not None and self._world is not None
        if not task.right_focus(self._world, t, self._variation):
            self._done = True
            return f"You focus on the {t.name}."
        self._world.focus = t
        return f"You focus on the {t.name}."

    def _move(self, t: Thing, holder: Thing) -> str:
        w = self._world
        assert w is not None
        if not t.portable:
            return f"The {t.name} cannot be moved."
        if holder is t or w.inside(holder, t) or not holder.reachable_inside:
            return f"You can't move the {t.name} there."
        holder.add(t)
        where = "inventory" if holder is w.inventory else holder.name
        return f"You move the {t.name} to the {where}."

    @staticmethod
    def _switch(t: Thing, verb: str) -> str:
        state, able, want, (cant, already, now) = SWITCHES[verb]
        if not getattr(t, able):
            return f"The {t.name} can't be {cant}."
        if getattr(t, state) == want:
            return f"The {t.name} is already {already}."
        setattr(t, state, want)
        return f"The {t.name} is now {now}."
