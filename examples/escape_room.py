"""An agent that gets better at a tiny text game across attempts, using only ``memory``.

The environment is a pure-Python escape room (no ScienceWorld). The acting policy reads its
learnings through the LangChain retriever (``clin.memory.langchain.MemoryRetriever``); after each
attempt the trace is recorded and a scripted "LLM" (a plain ``str -> str`` function that
reads the reflection prompt, standing in for a chat model) writes causal abstractions.

    python examples/escape_room.py            # prints the score of each attempt
    python examples/escape_room.py --db room.db --attempts 5
"""

from __future__ import annotations

import argparse
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from clin.memory import Memory, Scope
from clin.memory.langchain import MemoryRetriever

GOAL = "escaping the room"
ACTIONS = [  # the order an agent without memory tries them in: a poor one
    "look around", "read poster", "kick door", "shout for help", "sit on chair",
    "open door", "unlock door with key", "take key", "open drawer", "go through door",
]
MAX_STEPS = 8


@dataclass
class EscapeRoom:
    """Open the drawer, take the key, unlock and open the door, leave. Score 0..100."""

    drawer_open: bool = False
    has_key: bool = False
    unlocked: bool = False
    door_open: bool = False
    score: int = 0
    done: bool = False

    def step(self, action: str) -> tuple[str, int]:
        """Apply ``action``; return (observation, reward)."""
        if action == "open drawer" and not self.drawer_open:
            self.drawer_open = True
            return self._reward("The drawer slides open. A small key lies inside.", 10)
        if action == "take key" and self.drawer_open and not self.has_key:
            self.has_key = True
            return self._reward("You take the small key.", 20)
        if action == "unlock door with key" and self.has_key and not self.unlocked:
            self.unlocked = True
            return self._reward("The lock clicks.", 20)
        if action == "open door" and self.unlocked and not self.door_open:
            self.door_open = True
            return self._reward("The door swings open.", 20)
        if action == "go through door" and self.door_open:
            self.done = True
            return self._reward("You step outside. You escaped!", 30)
        if action in {"open door", "go through door"}:
            return "The door is locked.", 0
        if action in {"take key", "unlock door with key"}:
            return "You have no key.", 0
        return "Nothing happens.", 0

    def _reward(self, text: str, points: int) -> tuple[str, int]:
        self.score += points
        return text, points


@dataclass
class Attempt:
    score: int
    trace: list[dict[str, object]] = field(default_factory=list)


def plan(retriever: MemoryRetriever) -> list[str]:
    """Rank actions by the learnings: necessary ones first (in recall order), then unknown
    ones, then those learned not to contribute."""
    docs = retriever.invoke(GOAL)
    needed = [d.metadata["cause"] for d in docs if d.metadata["relation"] == "necessary"]
    useless = {d.metadata["cause"] for d in docs if d.metadata["relation"] != "necessary"}
    unknown = [a for a in ACTIONS if a not in needed and a not in useless]
    return [a for a in needed if a in ACTIONS] + unknown + [a for a in ACTIONS if a in useless]


def play(retriever: MemoryRetriever) -> Attempt:
    """Try the best-ranked action that has not failed since the state last changed."""
    env, order, failed = EscapeRoom(), plan(retriever), set()
    attempt = Attempt(score=0)
    for _ in range(MAX_STEPS):
        action = next((a for a in order if a not in failed), order[0])
        observation, reward = env.step(action)
        attempt.trace.append({"action": action, "observation": observation,
                              "reward": reward, "done": env.done})
        if reward:  # the state changed: what failed before may work now
            failed = set()
            order = [a for a in order if a != action]
        else:
            failed.add(action)
        if env.done:
            break
    attempt.score = env.score
    return attempt


STEP = re.compile(r"^(?P<idx>\d+)(?:-\d+)?\. > (?P<action>.+?)(?: \(x\d+\))?"
                  r"(?: -> (?P<obs>.*?))?(?: \[score \+(?P<r>\d+)[^\]]*\])?$")
SAME = re.compile(r"^\(same as step (\d+)\)$")


def scripted_llm(prompt: str) -> str:
    """Stands in for a chat model: keeps the current learnings and turns each rewarded step
    into a SHOULD BE NECESSARY and each 'Nothing happens' into a DOES NOT CONTRIBUTE."""
    lines, section = [], ""
    seen: dict[str, str] = {}  # step number -> observation, for "(same as step N)"
    for raw in prompt.splitlines():
        if raw.startswith(("CURRENT LEARNINGS", "ATTEMPT", "EARLIER TRIALS", "ROOMS SEEN")):
            section = raw.split()[0]
        elif section == "CURRENT" and raw.strip():
            lines.append(raw.strip().rsplit(" (support", 1)[0])
        elif section == "ATTEMPT" and (m := STEP.match(raw.strip())):
            obs = m.group("obs") or ""
            if same := SAME.match(obs):
                obs = seen.get(same.group(1), obs)
            seen[m.group("idx")] = obs
            if m.group("r"):
                lines.append(f"{m.group('action')} SHOULD BE NECESSARY to {GOAL}")
            elif obs == "Nothing happens.":
                lines.append(f"{m.group('action')} DOES NOT CONTRIBUTE to {GOAL}")
    return "\n".join(dict.fromkeys(lines))


def run(db: Path, attempts: int) -> list[int]:
    scope = Scope(namespace="examples", agent="escape-room-agent", task="escape-room")
    scores = []
    with Memory(db) as mem:
        retriever = MemoryRetriever(memory=mem, scope=scope, k=20)
        for n in range(1, attempts + 1):
            attempt = play(retriever)
            mem.record_trial(scope, attempt.trace, attempt.score,
                             completed=attempt.score == 100)
            outcome = mem.reflect(scope, llm=scripted_llm, goal=GOAL)
            scores.append(attempt.score)
            print(f"attempt {n}: score {attempt.score:3d} in {len(attempt.trace)} steps "
                  f"(learnings +{outcome.added} added, {outcome.promoted} promoted)")
        print("learnings now:")
        print(mem.render(scope, GOAL).text)
    return scores


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="escape-room agent that learns across attempts")
    ap.add_argument("--attempts", type=int, default=4)
    ap.add_argument("--db", type=Path, default=None, help="memory file (default: temporary)")
    args = ap.parse_args(argv)
    if args.db is not None:
        run(args.db, args.attempts)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        run(Path(tmp) / "escape.db", args.attempts)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
