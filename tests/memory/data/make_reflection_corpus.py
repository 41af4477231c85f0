"""Writes tests/memory/data/reflection_answers.jsonl: model answers to the reflection prompt in the
styles strong and weak models really use (and worse), each labelled with the abstractions
it holds and how many look-alike non-abstractions it holds; the answers written by hand
(reflection_answers_by_hand.json) come last.

Run ``python tests/memory/data/make_reflection_corpus.py`` after changing it; the test reads the
JSONL file, so the corpus stays fixed between runs (seeded).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

OUT = Path(__file__).with_name("reflection_answers.jsonl")
# Answers in shapes the generator does not make, written and labelled by hand.
HAND = Path(__file__).with_name("reflection_answers_by_hand.json")
VERB = {("necessary", "should"): "SHOULD BE NECESSARY", ("necessary", "may"): "MAY BE NECESSARY",
        ("does-not-contribute", "may"): "MAY NOT CONTRIBUTE",
        ("does-not-contribute", "should"): "DOES NOT CONTRIBUTE"}
SPELLINGS = {
    "SHOULD BE NECESSARY": ["SHOULD BE NECESSARY", "should be necessary", "Should Be Necessary"],
    "MAY BE NECESSARY": ["MAY BE NECESSARY", "may be necessary", "might be necessary",
                         "May be necessary"],
    "MAY NOT CONTRIBUTE": ["MAY NOT CONTRIBUTE", "may not contribute", "might not contribute"],
    "DOES NOT CONTRIBUTE": ["DOES NOT CONTRIBUTE", "does not contribute", "doesn't contribute",
                            "do not contribute", "Does Not Contribute"],
}
S, M, MN, D = [("necessary", "should"), ("necessary", "may"), ("does-not-contribute", "may"),
               ("does-not-contribute", "should")]
# (cause, relation+confidence, effect): the kind of learnings CLIN writes for ScienceWorld.
BASE = [
    ("opening the seed jar", S, "planting a seed"),
    ("moving the seeds to the flower pot", M, "planting seeds"),
    ("watering the flower pot", S, "growing a plant"),
    ("going to the workshop", D, "growing a plant"),
    ("looking at the sky", MN, "growing a plant"),
    ("using the lighter on the metal pot", M, "heating the water in the pot"),
    ("turning on the stove", S, "boiling water"),
    ("moving the pot of water to the stove", S, "boiling water"),
    ("pouring water into the sink", D, "boiling water"),
    ("picking up the thermometer", S, "measuring the temperature of the substance"),
    ("focusing on the thermometer", D, "measuring the melting point"),
    ("teleporting to the kitchen", M, "finding the thermometer"),
    ("opening the freezer", M, "finding ice"),
    ("waiting for a few steps", S, "letting the water boil"),
    ("waiting one step", MN, "changing the state of the water"),
    ("looking around the greenhouse", M, "finding the seed jar"),
    ("reading the recipe book", MN, "mixing paint"),
    ("mixing the contents of the cup", S, "making a new color of paint"),
    ("moving the red paint to the cup", S, "mixing orange paint"),
    ("moving the yellow paint to the cup", S, "mixing orange paint"),
    ("connecting the battery to the light bulb", S, "powering the light bulb"),
    ("connecting the wire to the switch", M, "completing the electrical circuit"),
    ("activating the switch", M, "turning on the light bulb"),
    ("disconnecting the battery", D, "completing the circuit"),
    ("picking up the animal", D, "finding a living thing"),
    ("going outside", S, "finding a living thing"),
    ("focusing on the frog", S, "completing the task about the frog"),
    ("focusing on the wrong object", D, "completing the task"),
    ("opening the door to the hallway", S, "leaving the kitchen"),
    ("opening the door to the greenhouse", S, "entering the greenhouse"),
    ("looking at the inventory", MN, "finishing the task"),
    ("checking the inventory", D, "boiling water"),
    ("dunking the thermometer into the water", M, "measuring the temperature of the water"),
    ("moving the ice cube to the stove", S, "melting the ice"),
    ("putting the metal fork in the freezer", M, "cooling the fork"),
    ("using the stopwatch", MN, "measuring the melting point"),
    ("moving the orange to the blast furnace", M, "changing the state of the orange"),
    ("teleporting to the foundry", M, "finding the blast furnace"),
    ("activating the blast furnace", S, "melting the metal"),
    ("eating the apple", D, "any science task"),
    ("moving the plant to the sunny window", MN, "pollinating the flowers"),
    ("having bees in the greenhouse", S, "pollinating the flowers"),
    ("opening the bee hive", M, "releasing the bees"),
    ("waiting ten steps", S, "letting the plant grow"),
    ("planting three seeds in separate pots", S, "identifying the dominant trait"),
    ("reading the seed packet", M, "knowing which seed to plant"),
    ("putting the battery in the inventory", MN, "building the circuit"),
    ("moving the substance to the metal pot", S, "heating the substance"),
    ("looking at the thermometer", S, "reading the temperature"),
    ("measuring the temperature every step", M, "finding the boiling point"),
    ("flushing the toilet", D, "any task in the bathroom"),
    ("picking up the inclined plane", D, "measuring the friction"),
    ("moving the block to the inclined plane", S, "measuring the friction"),
    ("activating the stopwatch", M, "timing the block on the inclined plane"),
    ("going to the living room", D, "finding the thermometer"),
    ("opening the cupboard in the kitchen", M, "finding the metal pot"),
    ("filling the metal pot with water from the sink", S, "boiling water"),
    ("pouring the water into the metal pot", S, "boiling water"),
    ("deactivating the sink", MN, "filling the pot"),
    ("closing the freezer", D, "freezing the water"),
]
NEAR_MISSES = [
    "Opening the door is necessary to leaving the room.",
    "Heating the water SHOULD BE IMPORTANT to boiling it.",
    "Picking up the seed MAY CONTRIBUTE to planting it.",
    "Turning on the stove SHOULD NOT BE NECESSARY to boiling water",
    "Focusing on the wrong object fails the task.",
    "X SHOULD BE NECESSARY to Y",
    "X MAY NOT CONTRIBUTE to Y",
    "SHOULD BE NECESSARY to planting the seed",
    "Opening the freezer DOES NOT CONTRIBUTE.",
    "Is waiting necessary to grow the plant?",
    "Does looking around MAY BE NECESSARY to finding the jar?",
    "1, 2, 3 DOES NOT CONTRIBUTE to 4, 5",
    "Whether heating the pot MAY BE NECESSARY to melting the ice is unclear.",
    "It is unclear whether waiting may be necessary to germination.",
    "You move to the kitchen.",
    "The agent failed to find the thermometer in time.",
    "Score: 25/100",
    "Next time, the agent should go to the greenhouse first.",
    "The stove contributes to boiling water.",
    "Mixing is required for making paint.",
    "Waiting MAY help the plant grow.",
    "The water boils after a few steps on the stove.",
    "Opening the seed jar is SHOULD to planting.",
    "MAY BE NECESSARY",
    "DOES NOT CONTRIBUTE to boiling water",
    "the agent MUST NOT focus on the thermometer",
    "Learnings:",
    "Reasoning: the first attempt wasted steps in the hallway.",
    "In it, you see: a stove, a sink, a table, a fridge, a door to the hallway.",
    "The task was to boil water but the agent never found the pot.",
    "Not sure if moving the pot may be necessary to boiling water?",
    "I wonder if the stove may not contribute to boiling water",
    "Turning on the stove should be considered necessary to boiling water",
    "Going outside does contribute to finding animals",
    "The thermometer reading was 10 degrees.",
    "Keep the earlier learnings that still hold.",
]
PREAMBLES = [
    "Here are the updated learnings:",
    "Based on the attempt, I learned the following.",
    "Updated learnings for the next attempt:",
    "Sure! Here is the revised list of causal abstractions.",
    "After reviewing the trajectory, these are my learnings:",
    "The agent scored 25/100. The main problems were wasted steps. Learnings:",
    "### Learnings",
    "**Updated learnings**",
    "Learnings (most important first):",
]
CLOSINGS = [
    "These learnings should help the agent in the next attempt.",
    "I hope this helps!",
    "Let me know if you need anything else.",
    "Following these will help the next attempt finish faster.",
    "The most important change is to find the pot earlier.",
    "Note: the agent wasted many steps looking at irrelevant objects.",
]
CONDITIONS = ["if the stove is broken", "when the door is closed", "if the pot is empty",
              "unless the water is already hot", "when the seed jar is empty"]
TRAILERS = [" (observed at step 12)", " - this worked in the last attempt",
            ", because the water heated up", " (see step 4)", " — confirmed twice"]


def expect(cause: str, rc: tuple[str, str], effect: str) -> dict[str, str]:
    return {"cause": cause, "relation": rc[0], "confidence": rc[1], "effect": effect}


def sentence(rng: random.Random, cause: str, rc: tuple[str, str], effect: str, style: set[str]
             ) -> tuple[str, dict[str, str]]:
    verb = VERB[rc]
    spelled = rng.choice(SPELLINGS[verb]) if "case" in style else verb
    link = rng.choice(["for", "in order to", "to"]) if "links" in style else "to"
    if link == "for" and not effect.split()[0].endswith("ing"):
        link = "to"
    c, e = cause, effect
    if "capital" in style:
        c = c[0].upper() + c[1:]
    exp_effect = effect
    if "condition" in style and rng.random() < 0.5:
        cond = rng.choice(CONDITIONS)
        exp_effect = f"{effect} {cond}"
        if rng.random() < 0.5:
            return (f"{cond[0].upper() + cond[1:]}, {c} {spelled} {link} {e}",
                    expect(c, rc, exp_effect))
        e = f"{effect} {cond}"
    if "backward" in style and rng.random() < 0.3 and link == "to" and "," not in c:
        return f"To {e}, {c} {spelled}", expect(c, rc, exp_effect)
    if "markdown" in style:
        kind = rng.randrange(4)
        if kind == 0:
            c = f"**{c}**"
        elif kind == 1:
            spelled = f"**{spelled}**"
        elif kind == 2:
            e = f"*{e}*"
        else:
            c, e = f"`{c}`", f"_{e}_"
    text = f"{c} {spelled} {link} {e}"
    if "trailer" in style and rng.random() < 0.5:
        text += rng.choice(TRAILERS)
    if "period" in style:
        text += rng.choice([".", ".", ";", "!"])
    if "quote" in style:
        text = rng.choice(['"{}"', "'{}'", "\u201c{}\u201d"]).format(text)
    return text, expect(c.strip("*`_"), rc, exp_effect)


def render_list(rng: random.Random, lines: list[str], style: set[str]) -> list[str]:
    out = []
    for i, line in enumerate(lines, 1):
        if "numbered" in style:
            line = rng.choice(["{}. ", "{}) ", "({}) ", "[{}] "]).format(i) + line
        elif "bullets" in style:
            line = rng.choice(["- ", "* ", "\u2022 ", "+ "]) + line
        elif "labels" in style:
            line = rng.choice(["Learning {}: ", "**Learning {}:** ", "Insight {}: "]).format(i) + line
        out.append(line)
    return out


STYLE_SETS = [
    set(), {"case"}, {"numbered"}, {"bullets"}, {"markdown"}, {"quote"}, {"period"},
    {"links"}, {"condition"}, {"backward"}, {"labels"}, {"trailer"},
    {"case", "numbered", "period"}, {"bullets", "markdown", "capital"},
    {"case", "links", "condition", "period"}, {"numbered", "markdown", "trailer", "capital"},
    {"quote", "case", "bullets"}, {"labels", "case", "links", "period"},
    {"case", "markdown", "condition", "backward", "numbered"},
]
SHAPES = ["lines", "lines", "prose", "json_object", "json_fenced", "json_array", "json_objects",
          "inline", "semicolons", "heading_mixed"]


def make_answer(rng: random.Random, n: int) -> dict:
    style = set(rng.choice(STYLE_SETS))
    shape = SHAPES[n % len(SHAPES)]
    picks = rng.sample(BASE, rng.randint(2, 9))
    sentences, expected = [], []
    for cause, rc, effect in picks:
        text, exp = sentence(rng, cause, rc, effect, style)
        sentences.append(text)
        expected.append(exp)
    misses = rng.sample(NEAR_MISSES, rng.randint(0, 3))
    answer: str
    if shape.startswith("json"):
        items: list = sentences + misses
        rng.shuffle(items)
        if shape == "json_objects":
            items = [{"learning": s} for s in items]
        body = items if shape in ("json_array", "json_objects") else {"learnings": items}
        dumped = json.dumps(body, indent=rng.choice([None, 2]), ensure_ascii=False)
        pre = rng.choice(PREAMBLES) + "\n" if rng.random() < 0.5 else ""
        post = "\n" + rng.choice(CLOSINGS) if rng.random() < 0.5 else ""
        if shape == "json_fenced":
            dumped = f"```json\n{dumped}\n```"
        answer = pre + dumped + post
    elif shape == "inline":
        numbered = [f"{i}. {s.rstrip('.;!')}." for i, s in enumerate(sentences, 1)]
        answer = rng.choice(PREAMBLES) + " " + " ".join(numbered) + " " + rng.choice(CLOSINGS)
    elif shape == "semicolons":
        answer = "; ".join(s.rstrip(".;!") for s in sentences) + "."
    else:
        lines = sentences + misses
        rng.shuffle(lines)
        lines = render_list(rng, lines, style)
        if shape == "prose":
            lines = [rng.choice(PREAMBLES), "", *lines, "", rng.choice(CLOSINGS)]
        elif shape == "heading_mixed":
            lines = ["### Updated learnings", *lines, "", "### Notes", rng.choice(CLOSINGS)]
        answer = "\n".join(lines)
    return {"id": n, "shape": shape, "style": sorted(style), "answer": answer,
            "expected": expected, "near_misses": len(misses)}


def main() -> None:
    rng = random.Random(20231010)
    records = [make_answer(rng, n) for n in range(200)]
    for i, rec in enumerate(json.loads(HAND.read_text(encoding="utf-8"))):
        records.append({"id": 200 + i, "shape": "hand", "style": [], **rec})
    with OUT.open("w", encoding="utf-8") as f:
        for rec in records:
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    total = sum(len(r["expected"]) for r in records)
    print(f"{len(records)} answers, {total} abstractions, "
          f"{sum(r['near_misses'] for r in records)} near misses -> {OUT}")


if __name__ == "__main__":
    main()
