"""The reference CLIN prompt layout, re-created from the description in issue 6 so both
layouts can be measured on the same states.

Every step it sends the whole action-template list, every possible object name, the current
look and inventory, up to five previous turns (history capped at 2,500 tokens) and the whole
memory. Order as in the reference agent: a fixed task message with the memory, then the
sliding window of turns, then one message with the current state and the lists. The wording
is ours and of similar length; only sizes and what changes between steps matter here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from clin.llm.base import Message

HISTORY_TURNS = 5
HISTORY_TOKENS = 2500

SYSTEM = (
    "You are an AI agent carrying out a science experiment in a simulated world that has a "
    "limited set of objects and actions at each step."
)
INTRO = (
    "Work your way through a virtual world to complete a task. At each step tell me the one "
    "action you want to take, for example picking something up, opening something or looking "
    "around, and I will tell you what happened. Then tell me the next action, until the task "
    "is done."
)
MEMORY_INTRO = (
    "Here is a summary of learnings from your previous attempts at this task. They capture "
    "pre-conditions (X MAY BE NECESSARY to Y, X SHOULD BE NECESSARY to Y) and mistakes (X MAY "
    "NOT CONTRIBUTE to Y, X DOES NOT CONTRIBUTE to Y) and can help you choose your next action:"
)
QUESTION = (
    'If I answer "Ambiguous request", your action could mean several things: reply with the '
    "number of the action you meant.\n\nWhat action would you like to take next?\nFirst look "
    "through the (unordered) learnings, if any, and decide which apply given the last "
    "observation; build a rationale for the next action from the ones you pick, or from the "
    "last observation if none applies. Answer in this format: write 'I used learning id(s):' "
    "followed by a comma separated list (possibly empty), then $$$ followed by the rationale, "
    "then ### followed by the single next action. If the task is complete, write TASK_COMPLETE "
    "as the action. If the task asks you to focus on an object, write FOCUS ON <OBJ>; focus "
    "is critical and may only be used as often as the task mentions it, on the right object, "
    "or the session ends with the task failed. If an action needs time to take effect, write "
    "'wait' as the action."
)


def reference_messages(
    *,
    task: str,
    memory: str,
    look: str,
    inventory: str,
    objects: Sequence[str],
    templates: Sequence[str],
    turns: Sequence[tuple[str, str]],
    count: Callable[[str], int],
    rationales: Sequence[str] | None = None,
) -> list[Message]:
    """The reference prompt for one state. ``turns`` are all (action, observation) pairs so
    far; the last ``HISTORY_TURNS`` are sent, oldest dropped first past ``HISTORY_TOKENS``."""
    first = f"{INTRO}\n\nTask: {task}\n\n"
    if memory:
        first += f"{MEMORY_INTRO}\n{memory}\n"
    first += "Below is the most recent history of your actions, to help you decide."
    history: list[Message] = []
    budget_text = ""
    n = len(turns)
    for i in range(n - 1, max(n - 1 - HISTORY_TURNS, -1), -1):
        action, observation = turns[i]
        observation = observation.replace("\n", " ")
        rationale = rationales[i] if rationales else ""
        candidate = f"assistant: {rationale} step: {i}\n action: {action}\n " \
                    f"observation: {observation}\n\n" + budget_text
        if count(candidate) > HISTORY_TOKENS:
            break
        budget_text = candidate
        obs_text = observation if i == n - 1 else (
            f"{observation}\n\nWhat action would you like to take next?"
        )
        history[:0] = [
            Message(role="assistant", content=rationale),
            Message(role="user", content=f"Selected action: {action}"),
            Message(role="user", content=obs_text),
        ]
    objects_text = "\n ".join(objects)
    actions_text = "\n ".join(templates).replace(
        "mix OBJ", "mix OBJ (OBJ is the container holding the things to mix)"
    )
    last = (
        f"Here is what you currently see:\n {look}"
        f"Here is what is currently in your inventory:\n {inventory}\n\n"
        f"Possible objects (values an OBJ can take):\n {objects_text}\n"
        f"Your next action should have one of these forms:\nPossible actions:\n "
        f"{actions_text}\n\n{QUESTION}"
    )
    return [
        Message(role="system", content=SYSTEM),
        Message(role="user", content=first),
        *history,
        Message(role="user", content=last),
    ]
