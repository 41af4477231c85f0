"""The ceiling: what a perfect planner scores through the agent (issue 9).

Each (task, variation)'s gold action sequence is replayed twice: straight into the raw
simulator (the physical limit), and as a scripted LLM's proposals through the real agent
loop (controller parse -> executor -> ambiguity answers -> stop rules -> simulator). Any
episode where the agent scores less than the raw simulator lost a good plan. The agent never
sees the gold path: it only drives the scripted LLM.

The gold path's numeric answers to ambiguous requests are not proposed: the agent answers
those itself, and when it asks the model to choose among the options, the player answers
with the gold's number (counted as ``asked``, apart from re-asks). A player that phrased the
action its own way (``--phrasing natural``: "the pea seed") meant the gold's object, and
picks the option that names most of the gold action's words, as a model that knows what it
meant would (the gold's number among equals).
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import re
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clin.agent import REPEAT_LIMIT, AgentSettings, run_trial
from clin.controller import TASK_COMPLETE
from clin.envs.base import EnvError, HasSplits, TextEnv, check_task
from clin.envs.jvm import py4j_errors
from clin.envs.registry import canonical, make
from clin.envs.scienceworld import ScienceWorld
from clin.executor import Lexicon, lexicon
from clin.llm.base import Message
from clin.llm.fake import ScriptedLLM
from clin.memory import GROUNDING_KINDS, Memory, Scope

from .phrasing import natural
from .replay import CHOICE_MARKER, FILLER_ACTION, gold_actions
from .stats import BenchTable, mean

log = logging.getLogger(__name__)
_OPTION = re.compile(r"^(\d+): (.+)$", re.MULTILINE)  # an option line of prompts/choice.j2

SPLITS = ("train", "dev", "test")


@dataclass
class GoldPlan:
    """The gold path as proposals: each action with the number the gold answered to its
    ambiguous request (if any), and 'look around' breaking runs of ``REPEAT_LIMIT``
    identical actions (the agent's repeated-action stop rule)."""

    actions: list[str]
    answers: dict[int, str]  # index in actions -> the gold's numeric answer after it
    raw: list[str]  # the gold path as the simulator gives it
    meant: list[str] = field(default_factory=list)  # actions before a paraphrase, if any


def plan_from_gold(gold: Sequence[str]) -> GoldPlan:
    actions: list[str] = []
    answers: dict[int, str] = {}
    for action in gold:
        if action.strip().isdigit():
            if actions:
                answers[len(actions) - 1] = action.strip()
            continue
        tail = actions[-(REPEAT_LIMIT - 1):]
        if len(tail) == REPEAT_LIMIT - 1 and all(a == action for a in tail):
            actions.append(FILLER_ACTION)
        actions.append(action)
    return GoldPlan(actions=actions, answers=answers, raw=list(gold))


class PerfectPlanner:
    """The scripted LLM's answers: the next gold action; the gold's number when asked to
    choose an option; the same action again when re-asked (counted)."""

    def __init__(self, plan: GoldPlan, lex: Lexicon | None = None) -> None:
        self.plan, self.lex = plan, lex
        self.next = 0
        self.reasks = 0
        self.reasked: list[str] = []  # the proposals re-asked, each once
        self.asked = 0
        self._last = TASK_COMPLETE

    def __call__(self, messages: list[Message]) -> str:
        if CHOICE_MARKER in messages[-1].content:
            self.asked += 1
            action = self._choose(messages[-1].content)
        elif len(messages) > 2:
            self.reasks += 1
            if self._last not in self.reasked:
                self.reasked.append(self._last)
            action = self._last
        else:
            if self.next < len(self.plan.actions):
                self._last = self.plan.actions[self.next]
                self.next += 1
            else:
                self._last = TASK_COMPLETE
            action = self._last
        return json.dumps({"used_learnings": [], "rationale": "", "action": action})

    def _choose(self, prompt: str) -> str:
        """The gold's number; after a paraphrase, the option naming most of the meant
        action's words (the gold's number among equals, else the first of them)."""
        gold = self.plan.answers.get(self.next - 1, "0")
        if self.lex is None or not self.plan.meant or self.next == 0:
            return gold
        meant = self.lex.object_words(self.plan.meant[self.next - 1])
        options = {m.group(1): m.group(2) for m in _OPTION.finditer(prompt)}
        overlap = {n: len(meant & self.lex.object_words(o)) for n, o in options.items()}
        if not overlap:
            return gold
        top = max(overlap.values())
        best = [n for n, k in overlap.items() if k == top]
        return gold if gold in best else best[0]


@dataclass
class Episode:
    task: str
    variation: int
    gold_len: int
    raw_score: float
    score: float
    steps: int
    stop: str
    reasks: int
    asked: int
    groundings: Counter[str] = field(default_factory=Counter)
    wall_s: float = 0.0
    reasked: list[str] = field(default_factory=list)  # proposals the agent re-asked


def raw_score(env: TextEnv, task: str, variation: int) -> tuple[float, list[str]]:
    """Send the gold path verbatim to the raw simulator (numbers included); returns the
    final score and the gold path. ScienceWorld: straight to the Java server (the package's
    ``step`` would also list the valid actions, look and inventory after every action, which
    we don't need); another env: through its own ``step``, until done."""
    gold = gold_actions(env, task, variation)
    if not isinstance(env, ScienceWorld):
        env.reset(task, variation)
        score = 0.0
        for action in gold:
            obs = env.step(action)
            score = obs.score
            if obs.done:
                break
        return score, gold
    raw = env._start()
    raw.reset()
    score = 0.0
    for action in gold:
        raw.server.step(action)
        score = float(round(100 * raw.server.getScore()))
        if score < 0 or raw.server.getCompleted():
            break
    return score, gold


def run_episode(env: TextEnv, mem: Memory, task: str, variation: int, *,
                raw: bool = True, phrasing: str = "verbatim") -> Episode:
    """One (task, variation); ``raw=False`` skips the raw-simulator replay (raw score NaN)."""
    if raw:
        raw_sim, gold = raw_score(env, task, variation)
    else:
        raw_sim, gold = float("nan"), gold_actions(env, task, variation)
    plan = plan_from_gold(gold)
    if phrasing == "natural":  # as a model writes it (bench/phrasing.py), seeded per episode
        plan.meant = plan.actions
        plan.actions = natural(plan.actions, env.name, f"{task}/{variation}")
    player = PerfectPlanner(plan, lexicon(env.profile))
    settings = AgentSettings(max_steps=len(plan.actions) + 1, reflect=False)
    calls = settings.max_steps * (settings.reasks + 1) * 2 + 1
    llm = ScriptedLLM([player] * calls, name="perfect-planner")
    scope = Scope(namespace="ceiling", env=env.name, task=task, variation=str(variation))
    run_id = mem.start_run(protocol="bench-ceiling", model=llm.name, scope=scope,
                           trials_requested=1)
    t0 = time.perf_counter()
    result = run_trial(env=env, llm=llm, mem=mem, run_id=run_id, scope=scope, idx=1,
                       task=task, variation=variation, settings=settings)
    wall = time.perf_counter() - t0
    mem.finish_run(run_id)
    kinds = Counter(str(r["grounding"]) for r in mem.db.query(
        "SELECT grounding FROM steps WHERE trial_id = ?", [result.trial_id]))
    return Episode(task=task, variation=variation, gold_len=len(gold), raw_score=raw_sim,
                   score=result.score, steps=result.steps, stop=result.stop_reason,
                   reasks=player.reasks, asked=player.asked, groundings=kinds, wall_s=wall,
                   reasked=player.reasked)


def simplification_arg(value: str) -> str:
    """``none`` (no simplifications) is ScienceWorld's empty string."""
    return "" if value.strip().lower() in ("none", "") else value


def env_options(env: str, simplification: str) -> dict[str, Any]:
    """``make``'s options for the ceiling's env: ScienceWorld takes the simplification."""
    return {"simplification": simplification_arg(simplification)} \
        if canonical(env) == "scienceworld" else {}


def run_ceiling(
    *,
    tasks: Sequence[str] | None,
    split: str,
    variations: int,
    simplification: str,
    jobs: int = 1,
    env: str = "scienceworld",
    phrasing: str = "verbatim",
    on_episode: Callable[[Episode], None] | None = None,
) -> list[Episode]:
    """All episodes, in task order. ``jobs`` > 1 runs tasks in that many processes, each with
    its own simulator (a JVM is single-threaded)."""
    name_, options = canonical(env), env_options(env, simplification)
    world = make(name_, **options)
    try:
        names = list(tasks) if tasks else [t.name for t in world.tasks()]
        for name in names:
            check_task(world, name, 0)
        if jobs <= 1:
            return [ep for name in names
                    for ep in _task_episodes(name, split, variations, name_, options, world,
                                             on_episode, phrasing)]
    finally:
        world.close()
    done: dict[str, list[Episode]] = {}
    with ProcessPoolExecutor(max_workers=jobs, initializer=_worker_init,
                             initargs=(name_, options)) as pool:
        futures = {pool.submit(_worker_task, name, split, variations, phrasing): name
                   for name in names}
        for fut in as_completed(futures):
            done[futures[fut]] = fut.result()
            for ep in done[futures[fut]]:
                if on_episode:
                    on_episode(ep)
    return [ep for name in names for ep in done[name]]


def _task_episodes(name: str, split: str, variations: int, env_name: str,
                   options: dict[str, Any], env: TextEnv | None = None,
                   on_episode: Callable[[Episode], None] | None = None,
                   phrasing: str = "verbatim") -> list[Episode]:
    own = env is None
    env = env or make(env_name, **options)
    if not isinstance(env, HasSplits):
        raise EnvError(f"{env.name} has no train/dev/test splits")
    out: list[Episode] = []
    try:
        with (tempfile.TemporaryDirectory(prefix="clin-ceiling-") as tmp,
              Memory(Path(tmp) / "ceiling.db") as mem):
            for variation in env.split(name, split)[:variations]:
                try:
                    out.append(run_episode(env, mem, name, variation, phrasing=phrasing))
                except py4j_errors() as exc:  # the JVM died (e.g. memory pressure): once more
                    log.warning("%s died during %s %d (%s); running it again",
                                env.name, name, variation, exc)
                    env.close()
                    out.append(run_episode(env, mem, name, variation, phrasing=phrasing))
                if on_episode:
                    on_episode(out[-1])
    finally:
        if own:
            env.close()
    return out


_WORKER_ENV: TextEnv | None = None


def _worker_init(env_name: str, options: dict[str, Any]) -> None:
    global _WORKER_ENV
    _WORKER_ENV = make(env_name, **options)
    atexit.register(_WORKER_ENV.close)


def _worker_task(name: str, split: str, variations: int, phrasing: str) -> list[Episode]:
    assert _WORKER_ENV is not None
    return _task_episodes(name, split, variations, _WORKER_ENV.name, {}, _WORKER_ENV,
                          phrasing=phrasing)


def _kinds(c: Counter[str]) -> str:
    return ", ".join(f"{k} {c[k]}" for k in GROUNDING_KINDS if c.get(k))


def row(ep: Episode) -> list[str]:
    return [ep.task, str(ep.variation), str(ep.gold_len), f"{ep.raw_score:g}", f"{ep.score:g}",
            str(ep.reasks), str(ep.asked), _kinds(ep.groundings), ep.stop]


COLUMNS = ["task", "var", "gold len", "raw sim", "agent", "re-asks", "asked", "groundings",
           "stop"]


def summary(episodes: Sequence[Episode]) -> str:
    full = sum(1 for e in episodes if e.score >= 100)
    return (f"ceiling: {full}/{len(episodes)} episodes reach 100; "
            f"mean {mean([e.score for e in episodes]):.1f}; "
            f"re-asks {sum(e.reasks for e in episodes)}")


def ceiling_table(episodes: Sequence[Episode], split: str, variations: int,
                  simplification: str, env: str = "scienceworld",
                  phrasing: str = "verbatim") -> BenchTable:
    worse = [e for e in episodes if e.score < e.raw_score]
    asked = sum(e.asked for e in episodes)
    choice = sum(e.groundings.get("choice", 0) for e in episodes)
    notes = [
        summary(episodes),
        (f"Ambiguous requests answered by the agent (option naming the proposal's objects): "
         f"{choice}; the model asked to choose among the simulator's options: {asked} "
         "(not re-asks)."),
        *([("Re-asked proposals: " + "; ".join(
            f"{e.task} {e.variation}: " + ", ".join(repr(a) for a in e.reasked)
            for e in episodes if e.reasked) + ".")] if any(e.reasked for e in episodes)
          else []),
        (f"Episodes worse than the raw simulator on the same actions: {len(worse)}"
         + (": " + ", ".join(f"{e.task} {e.variation}" for e in worse) if worse else "") + "."),
        (f"Mean raw-simulator score {mean([e.raw_score for e in episodes]):.1f}; "
         f"agent wall time {sum(e.wall_s for e in episodes):.0f} s for "
         f"{sum(e.steps for e in episodes)} steps."),
    ]
    env = canonical(env)
    notes.append(f"Load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}.")
    if phrasing != "verbatim":
        notes.insert(0, "Proposals phrased as a model writes them (bench/phrasing.py, seeded "
                     "per episode); 'raw sim' is the verbatim gold path's score: the agent "
                     f"must reach it. Reaching it: "
                     f"{sum(1 for e in episodes if e.score >= e.raw_score)}/{len(episodes)}.")
    if env != "scienceworld" or phrasing != "verbatim":
        how = "" if phrasing == "verbatim" else f", phrased {phrasing}"
        return BenchTable(
            key=f"ceiling_{env}_{split}" + ("" if phrasing == "verbatim" else f"_{phrasing}"),
            title=(f"6b. Ceiling, {env}: gold paths through the agent ({split} split, first "
                   f"{variations} variation(s) per task{how})"),
            columns=COLUMNS, rows=[row(e) for e in episodes], notes=notes)
    simp = simplification or "none"
    return BenchTable(
        key=f"ceiling_{split}_{simp if simp in ('easy', 'none') else 'custom'}",
        title=(f"6. Ceiling: gold paths through the agent ({split} split, first {variations} "
               f"variation(s), simplification `{simp}`)"),
        columns=COLUMNS,
        rows=[row(e) for e in episodes],
        notes=notes,
    )
