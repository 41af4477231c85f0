"""Gold plans as a model phrases them (``python -m bench ceiling --phrasing natural``).

A strong model rarely writes an env's exact command: it adds articles, says "take" or "get"
for "pick up", "turn on" for "activate", "walk to", "place X in Y" for "move X to Y", "go
north" for "move north", "look at" for "examine". :func:`paraphrase` rewrites one gold action
that way, choosing among the phrasings with a seeded generator, so a run is reproducible and
each episode sees a mix. Like a model, it names an object without its container ("the pea
seed", not "pea seed in seed jar") unless the name alone says nothing ("the substance in the
metal pot"). The agent must still reach the verbatim replay's score with no re-ask: the env
profile's lexicon, the simulator's parser and the choice among the simulator's options
carry the meaning.
"""

from __future__ import annotations

import random
import re

# (pattern on the gold action, phrasings; \1 \2 are the pattern's groups)
_SCIENCEWORLD: list[tuple[str, list[str]]] = [
    (r"^pick up (.+)$", [r"take the \1", r"get the \1", r"pick up the \1", r"grab the \1"]),
    (r"^activate (.+)$", [r"turn on the \1", r"switch on the \1", r"activate the \1"]),
    (r"^deactivate (.+)$", [r"turn off the \1", r"switch off the \1"]),
    (r"^go to (.+)$", [r"walk to the \1", r"go to the \1", r"head to the \1"]),
    (r"^teleport to (.+)$", [r"teleport to the \1", r"go to the \1"]),
    (r"^move (.+) to (.+)$", [r"place the \1 in the \2", r"put the \1 in the \2",
                              r"move the \1 to the \2", r"put the \1 into the \2"]),
    (r"^pour (.+) into (.+)$", [r"pour the \1 into the \2", r"pour the \1 in the \2"]),
    (r"^look at (.+)$", [r"examine the \1", r"look at the \1", r"inspect the \1"]),
    (r"^use (.+) on (.+)$", [r"use the \1 on the \2"]),
    (r"^(open|close|read|mix|eat|flush|use) (.+)$", [r"\1 the \2"]),
    (r"^focus on (.+)$", [r"focus on the \1"]),
    (r"^look around$", ["look around", "look"]),
]
_TEXTWORLD_EXPRESS: list[tuple[str, list[str]]] = [
    (r"^take (.+)$", [r"pick up the \1", r"get the \1", r"take the \1", r"grab the \1"]),
    (r"^put (.+) in (.+)$", [r"put the \1 in the \2", r"place the \1 in the \2",
                             r"put the \1 into the \2", r"place the \1 on the \2"]),
    (r"^move (north|south|east|west)$", [r"go \1", r"walk \1", r"move \1", r"head \1"]),
    (r"^open door to (.+)$", [r"open the door to the \1", r"open door to \1"]),
    (r"^close door to (.+)$", [r"close the door to the \1"]),
    (r"^examine (.+)$", [r"look at the \1", r"examine the \1", r"inspect the \1"]),
    (r"^cook (.+) in (.+)$", [r"cook the \1 in the \2", r"cook the \1 with the \2"]),
    (r"^(open|close|read|eat|slice|chop|dice|touch|smell|prepare) (.+)$", [r"\1 the \2"]),
    (r"^look around$", ["look around", "look"]),
]
RULES = {"scienceworld": _SCIENCEWORLD, "textworld-express": _TEXTWORLD_EXPRESS}
# What follows an object's own name in a gold action: where it is (its contents stay:
# "cup containing red paint" is how a model tells two cups apart).
_CONTAINER = re.compile(r" (in|on) .+$")
# Names that say what kind of thing, not which: a model keeps their container ("the
# substance in the metal pot", "the drawer in the counter", "the anode in the light bulb").
_KINDS = frozenset({"substance", "paint", "drawer", "anode", "cathode", "organism",
                    "living thing", "seed plant", "plant", "seed", "thing"})


def bare(name: str) -> str:
    """An object's name as a model writes it: without its container, unless the name alone
    is only a kind of thing."""
    short = _CONTAINER.sub("", name)
    return name if short in _KINDS else short


def paraphrase(action: str, rng: random.Random, env: str) -> str:
    """``action`` as a model might write it for ``env`` (unchanged when no rule applies:
    numbers answering a choice, ``wait``, ``inventory``...)."""
    for pattern, phrasings in RULES.get(env, []):
        m = re.match(pattern, action)
        if m:
            out = rng.choice(phrasings)
            for i, name in enumerate(m.groups(), 1):
                out = out.replace(f"\\{i}", bare(name))
            return out
    return action


def natural(actions: list[str], env: str, seed: str) -> list[str]:
    """The plan paraphrased with a generator seeded by ``seed`` (e.g. "boil/3")."""
    rng = random.Random(seed)
    return [paraphrase(a, rng, env) for a in actions]
