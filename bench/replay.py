"""Replay a simulator's gold trajectory through the real agent loop (ScienceWorld's
grow-plant 0 by default; ``--env twx``: TextWorldExpress's cookingworld, first test seed).

The agent never sees the gold path: it only drives a zero-latency scripted LLM, so every
millisecond the trial spends outside the LLM call and the simulator step is framework
overhead (prompt building, grounding, memory rendering, SQLite writes). The same trial's
prompts feed the token benchmark, and the recorded states let it rebuild the reference
layout for exactly those states.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clin.agent import REPEAT_LIMIT, AgentSettings, TrialResult, run_trial
from clin.controller import TASK_COMPLETE
from clin.envs.base import EnvError, EnvProfile, HasGoldPaths, Observation, TaskInfo, TextEnv
from clin.envs.scienceworld import ScienceWorld
from clin.llm.base import Message
from clin.llm.fake import ScriptedLLM
from clin.memory import Memory, Scope, parse_learnings, render

TASK = "grow-plant"
VARIATION = 0
# env -> (task, variation) of its perf replay: a long gold path with rooms and containers
REPLAYS = {"scienceworld": (TASK, VARIATION), "textworld-express": ("cookingworld", 2000)}
FILLER_ACTION = "look around"  # breaks a run of identical gold actions (see prepare_gold)
CHOICE_MARKER = "Its options are:"  # in prompts/clin/prompts/choice.j2: the agent asks to pick an option

# Learnings of the kind a few grow-plant trials produce, so memory recall and rendering run.
SEED_LEARNINGS = """\
moving a seed to a flower pot SHOULD BE NECESSARY to grow a plant
focusing on the seed in the flower pot SHOULD BE NECESSARY to start the task
watering the flower pot with the jug SHOULD BE NECESSARY to keep the plant growing
activating the sink MAY BE NECESSARY to fill the jug with water
waiting several steps MAY BE NECESSARY to see the plant change life stage
picking up the seed jar MAY BE NECESSARY to carry seeds to the greenhouse
looking at the bedroom DOES NOT CONTRIBUTE to growing a plant
opening the oven MAY NOT CONTRIBUTE to growing a plant
"""


@dataclass
class State:
    """What the reference layout needs of one simulator state."""

    look: str
    inventory: str
    objects: list[str]
    templates: list[str]


@dataclass
class Snapshot:
    """The simulator state and the number of (action, observation) turns so far, taken when
    the LLM is asked: the reference prompt for that call is built from it."""

    state: State
    turns: int


class RecordingEnv:
    """An env plus a record of each state (for ScienceWorld also its possible objects and
    action templates, which the reference prompt layout lists).

    The extra simulator calls happen inside ``step``/``reset``, so the agent books them as
    simulator time, never as framework overhead."""

    def __init__(self, inner: TextEnv) -> None:
        self.inner = inner
        self.name: str = inner.name
        self.profile: EnvProfile = inner.profile
        self.turns: list[tuple[str, str]] = []
        self.current: State | None = None

    def tasks(self) -> list[TaskInfo]:
        return self.inner.tasks()

    def task_description(self) -> str:
        return self.inner.task_description()

    def reset(self, task: str, variation: int) -> Observation:
        obs = self.inner.reset(task, variation)
        self.turns = []
        self._record(obs)
        return obs

    def step(self, action: str) -> Observation:
        obs = self.inner.step(action)
        self.turns.append((action, obs.text))
        self._record(obs)
        return obs

    def close(self) -> None:
        self.inner.close()

    def _record(self, obs: Observation) -> None:
        objects: list[str] = []
        templates: list[str] = []
        if isinstance(self.inner, ScienceWorld):
            raw: Any = self.inner._env  # the adapter exposes no accessor for these two lists
            objects = [str(o) for o in raw.get_possible_objects()]
            templates = [str(t) for t in raw.get_possible_actions()]
        self.current = State(look=obs.look, inventory=obs.inventory, objects=objects,
                             templates=templates)


def gold_actions(env: TextEnv, task: str = TASK, variation: int = VARIATION) -> list[str]:
    """The simulator's gold action sequence (an env with gold paths)."""
    if not isinstance(env, HasGoldPaths):
        raise EnvError(f"{env.name} has no gold paths")
    return env.gold_actions(task, variation)


@dataclass
class Replayable:
    actions: list[str]
    skipped_numbers: int
    fillers: int


def prepare_gold(gold: list[str]) -> Replayable:
    """Drop pure-number answers (the agent answers ambiguous requests itself) and break any
    run of ``REPEAT_LIMIT`` identical actions with a harmless look, which the agent's
    repeated-action stop rule would otherwise end the trial on (five ``wait1`` in a row)."""
    out: list[str] = []
    skipped = fillers = 0
    for action in gold:
        if action.strip().isdigit():
            skipped += 1
            continue
        tail = out[-(REPEAT_LIMIT - 1):]
        if len(tail) == REPEAT_LIMIT - 1 and all(a == action for a in tail):
            out.append(FILLER_ACTION)
            fillers += 1
        out.append(action)
    return Replayable(actions=out, skipped_numbers=skipped, fillers=fillers)


class GoldPlayer:
    """The scripted LLM's answer: the next gold action as a JSON proposal. A re-ask (the
    conversation grew past system + user) repeats the last action and is counted; asked to
    pick an option of an ambiguous request, it picks the first (counted apart)."""

    def __init__(self, actions: list[str], env: RecordingEnv) -> None:
        self.actions = actions
        self.env = env
        self.next = 0
        self.reasks = 0
        self.asked = 0
        self.snapshots: list[Snapshot] = []
        self._last = TASK_COMPLETE
        self.rationales: list[str] = []  # one per step taken, as the controller wrote it

    def __call__(self, messages: list[Message]) -> str:
        assert self.env.current is not None
        self.snapshots.append(Snapshot(self.env.current, len(self.env.turns)))
        if CHOICE_MARKER in messages[-1].content:
            self.asked += 1
            return json.dumps({"used_learnings": [], "rationale": "", "action": "0"})
        if len(messages) > 2:
            self.reasks += 1
        elif self.next < len(self.actions):
            self._last = self.actions[self.next]
            self.next += 1
        else:
            self._last = TASK_COMPLETE
        why = rationale_for(self._last)
        if len(messages) <= 2:
            self.rationales.append(why)
        return json.dumps({"used_learnings": [], "rationale": why, "action": self._last})


def rationale_for(action: str) -> str:
    """A plan-length rationale (about 200 characters, as the controller prompt asks for), so
    prompt sizes are measured with the rationales a real model writes in the history."""
    return (f"The last observation shows what changed and what is in reach. The task still "
            f"needs the next step of the plan, so I will {action}, then check the result "
            f"and continue with the remaining steps.")


@dataclass
class ReplayResult:
    result: TrialResult
    calls: list[list[Message]]
    snapshots: list[Snapshot]
    turns: list[tuple[str, str]]
    gold: Replayable
    reasks: int
    memory_text: str  # the whole memory, as the reference layout sends it
    rationales: list[str]  # per step, what the scripted controller said
    task_description: str
    env_ms: list[float]
    grounding: list[str]  # per step: a clin.memory.GroundingKind
    wall_s: float
    env: str = "scienceworld"
    task: str = TASK
    variation: int = VARIATION
    load: str = ""  # the load averages when it ran (1, 5, 15 min)
    extra: dict[str, Any] = field(default_factory=dict)


def seed_memory(mem: Memory, scope: Scope) -> None:
    report = parse_learnings(SEED_LEARNINGS)
    if report.rejected:
        raise ValueError(f"seed learnings rejected: {report.rejected}")
    mem.apply_reflection(scope, report)


def run_replay(env: TextEnv, *, max_steps: int | None = None) -> ReplayResult:
    """Replay the env's perf gold path (:data:`REPLAYS`) through ``clin.agent.run_trial``
    with a real SQLite memory in a temporary directory; ``max_steps`` cuts it short."""
    task, variation = REPLAYS.get(env.name, (TASK, VARIATION))
    gold = prepare_gold(gold_actions(env, task, variation))
    rec = RecordingEnv(env)
    player = GoldPlayer(gold.actions, rec)
    settings = AgentSettings(max_steps=max_steps or len(gold.actions) + 1, reflect=False)
    llm = ScriptedLLM([player] * (settings.max_steps * (settings.reasks + 1) + 1),
                      name="gold-replay")
    scope = Scope(namespace="bench", env=env.name, task=task, variation=variation)
    with (
        tempfile.TemporaryDirectory(prefix="clin-bench-") as tmp,
        Memory(Path(tmp) / "bench.db") as mem,
    ):
        seed_memory(mem, scope)
        run_id = mem.start_run(protocol="bench-replay", model=llm.name, scope=scope,
                               trials_requested=1)
        t0 = time.perf_counter()
        result = run_trial(
            env=rec, llm=llm, mem=mem, run_id=run_id, scope=scope, idx=1, task=task,
            variation=variation, settings=settings,
        )
        wall = time.perf_counter() - t0
        mem.finish_run(run_id)
        rows = list(mem.db.query(
            "SELECT env_ms, grounding FROM steps WHERE trial_id = ? ORDER BY idx",
            [result.trial_id],
        ))
        memory_text = render(mem.recall(scope)).text
    return ReplayResult(
        result=result,
        calls=llm.calls,
        snapshots=player.snapshots,
        turns=list(rec.turns),
        gold=gold,
        reasks=player.reasks,
        memory_text=memory_text,
        rationales=player.rationales,
        task_description=env.task_description(),
        env_ms=[float(r["env_ms"]) for r in rows],
        grounding=[str(r["grounding"]) for r in rows],
        wall_s=wall,
        env=env.name,
        task=task,
        variation=variation,
        load=" ".join(f"{x:.2f}" for x in os.getloadavg()),
    )
