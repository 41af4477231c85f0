"""Reflection prompt tokens per trial, issue 10: what the reflection core sends (the whole
trial compressed into a token budget, the earlier trials' scores and learnings, the memory
with support) against the layout it replaced (the last steps that fit 2,500 tokens with
observations cut to 160 characters, the memory as plain lines, no earlier scores).

Three ADAPT trials of 100 steps each on grow-plant 0, played by a scripted walk through the
house (the same actions every trial, so the trials differ only in what memory holds), with a
scripted reflection writing 12 learnings.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import jinja2

from clin.agent import AgentSettings
from clin.envs.scienceworld import ScienceWorld
from clin.llm import ScriptedLLM
from clin.llm.base import Message
from clin.memory import Memory, estimate_tokens
from clin.memory.reflect import room_of
from clin.trials.runner import AdaptConfig, run_adapt

from .stats import BenchTable
from .tokens import TokenCounter, chat_text

STEPS, TRIALS = 100, 3
WALK = ["look around", "open door to kitchen", "go to kitchen", "look around", "inventory",
        "look at sink", "open door to hallway", "go to hallway", "look around",
        "open door to greenhouse", "go to greenhouse", "look around", "look at flower pot 1",
        "go to hallway", "go to kitchen", "wait1", "open fridge", "look in fridge",
        "pick up seed jar", "look at seed jar", "go to hallway", "go to greenhouse",
        "move apple seed to flower pot 1", "look at flower pot 2", "open bee hive", "wait"]
LEARNING_LINES = [
    "opening the door to the kitchen SHOULD BE NECESSARY to finding the seeds",
    "picking up the seed jar SHOULD BE NECESSARY to planting the seeds",
    "going to the greenhouse SHOULD BE NECESSARY to planting the seeds",
    "moving a seed to a flower pot MAY BE NECESSARY to growing the plant",
    "looking in the fridge DOES NOT CONTRIBUTE to growing the plant",
    "looking at the sink DOES NOT CONTRIBUTE to growing the plant",
    "checking the inventory MAY NOT CONTRIBUTE to growing the plant",
    "waiting MAY BE NECESSARY to letting the plant grow",
    "focusing on a seed SHOULD BE NECESSARY to starting the task",
    "opening the bee hive MAY BE NECESSARY to pollinating the flowers",
    "watering the flower pot MAY BE NECESSARY to growing the plant",
    "teleporting to the kitchen MAY NOT CONTRIBUTE to growing the plant",
]

# The layout before issue 10 (clin/reflection.py and prompts/reflection_*.j2 of that time).
_BEFORE_SYSTEM = """You review an agent's attempt at a ScienceWorld task and write causal \
abstractions that will help the next attempt.
Write each learning on its own line, in exactly one of these four forms:
X SHOULD BE NECESSARY to Y
X MAY BE NECESSARY to Y
X MAY NOT CONTRIBUTE to Y
X DOES NOT CONTRIBUTE to Y
X is an action or a state (e.g. "opening the seed jar"), Y is a goal or sub-goal (e.g. \
"planting a seed").
Use SHOULD / DOES NOT when the attempt showed it clearly, MAY / MAY NOT when it only suggests it.
Keep the earlier learnings that still hold, fix the ones this attempt contradicted, add new \
ones. At most 12 lines.
Answer with the lines only, no numbering, no other text."""
_BEFORE_USER = jinja2.Template(
    "TASK: {{ task }}\n\n{% if previous %}EARLIER LEARNINGS:\n{{ previous }}\n\n{% endif %}"
    "ATTEMPT {{ trial }} ({{ steps }} steps{% if omitted %}, first {{ omitted }} steps omitted"
    "{% endif %}):\n{% for h in trace %}{{ h.idx }}. > {{ h.action }} -> {{ h.observation }}"
    "{% if h.reward %} [score +{{ h.reward }}]{% endif %}\n{% endfor %}"
    "Final score: {{ score }} / 100 ({{ outcome }}).\n\nWrite the updated learnings."
)


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def before_messages(task: str, previous: str, steps: list[dict], trial: int, score: float,
                    outcome: str) -> tuple[list[Message], int]:
    """The replaced layout, and how many of the trial's steps it showed."""
    items = [{**s, "observation": _clip(s["observation"] or "", 160)} for s in steps]
    kept: list[dict] = []
    used = 0
    for h in reversed(items):
        cost = estimate_tokens(h["action"]) + estimate_tokens(h["observation"]) + 6
        if used + cost > 2500:
            break
        kept.append(h)
        used += cost
    kept.reverse()
    user = _BEFORE_USER.render(task=task, previous=previous, trace=kept, steps=len(items),
                               omitted=len(items) - len(kept), trial=trial, score=score,
                               outcome=outcome)
    return [Message(role="system", content=_BEFORE_SYSTEM),
            Message(role="user", content=user.strip())], len(kept)


def _memory_of(user: str) -> str:
    """The memory the reflection was shown, as the replaced layout listed it."""
    if "CURRENT LEARNINGS" not in user:
        return ""
    block = user.split("CURRENT LEARNINGS", 1)[1].split("\n\n", 1)[0].splitlines()[1:]
    return "\n".join(line.rsplit(" (support", 1)[0] for line in block)


class _Walker:
    def __init__(self) -> None:
        self.n = 0

    def __call__(self, messages: list[Message]) -> str:
        if "review an agent's attempt" in messages[0].content:
            return "\n".join(LEARNING_LINES)
        if len(messages) > 2:
            return json.dumps({"used_learnings": [], "rationale": "", "action": "look around"})
        self.n += 1
        action = WALK[(self.n - 1) % len(WALK)]
        return json.dumps({"used_learnings": [], "rationale": "", "action": action})


def reflection_table(env: ScienceWorld, counter: TokenCounter) -> BenchTable:
    llm = ScriptedLLM([_Walker()] * (TRIALS * (STEPS * 3 + 1)), name="walk")
    cfg = AdaptConfig(task="grow-plant", variation=0, trials=TRIALS,
                      settings=AgentSettings(max_steps=STEPS))
    rows: list[list[str]] = []
    with tempfile.TemporaryDirectory(prefix="clin-bench-") as tmp, \
            Memory(Path(tmp) / "r.db") as mem:
        summary = run_adapt(cfg, env=env, llm=llm, mem=mem)
        reflections = [c for c in llm.calls if "review an agent's attempt" in c[0].content]
        for n, (trial, msgs) in enumerate(zip(summary.trials, reflections, strict=True)):
            steps = list(mem.db.query(
                "SELECT idx, action, observation, reward FROM steps WHERE trial_id = ? "
                "ORDER BY idx", [trial.trial_id]))
            old, shown = before_messages(env.task_description(), _memory_of(msgs[1].content),
                                         steps, n + 1, trial.score, "incomplete")
            rooms = sum(1 for line in msgs[1].content.splitlines()
                        if line.startswith("- ")
                        and room_of(line[2:], env.profile.room_pattern))
            before_t, after_t = counter.count(chat_text(old)), counter.count(chat_text(msgs))
            rows.append([str(n + 1), str(len(steps)), str(before_t), str(shown), str(after_t),
                         str(len(steps)), str(rooms), str(n), f"{after_t / before_t:.2f}"])
    totals = [sum(int(r[2]) for r in rows), sum(int(r[4]) for r in rows)]
    return BenchTable(
        key="reflection",
        title=f"2b. Reflection prompt tokens per trial ({TRIALS} ADAPT trials x {STEPS} steps, "
              "grow-plant 0, scripted walk)",
        columns=["trial", "steps", "before: tokens", "before: steps shown", "after: tokens",
                 "after: steps shown", "after: rooms in full", "after: earlier trials shown",
                 "after / before"],
        rows=rows,
        notes=[
            f"Tokens counted with: {counter.name}, on ChatML chat text.",
            (f"Per run of {TRIALS} trials: {totals[0]} tokens before, {totals[1]} after "
             f"({totals[1] / totals[0]:.2f}x); one reflection call per trial, so this is the "
             "whole reflection cost per trial."),
            ("Before: the last steps that fit 2,500 tokens, observations cut to 160 characters "
             "(the start of a long trial, where rooms are first seen, is what gets cut). After: "
             "every step (repeats as '(same as step N)', runs of one action as one line), the "
             "first full view of each room, earlier trials' scores and learnings, memory with "
             "support; the attempt is held to 3,000 tokens by shortening observations, never "
             "by dropping steps."),
        ],
    )
