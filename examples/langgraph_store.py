"""A LangGraph graph whose long-term memory is CLIN's: ``CLINStore`` as the graph's store.

The graph recalls what it learned (``store.search``), acts on a tiny tea-making world with
a scripted model (no LLM needed), and writes what the attempt taught it as causal learnings
(``store.put``). The second attempt skips what the first found useless.

    pip install 'clin-agent[langgraph]'
    python examples/langgraph_store.py --db tea.db
"""

from __future__ import annotations

import argparse
from typing import TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from clin.memory.langgraph import CLINStore

NAMESPACE = ("demo", "tea-bot", "kitchen", "make tea")  # namespace, agent, env, task
GOAL = "making tea"
ACTIONS = ["add sugar", "boil water", "open the fridge", "pour water over the tea bag"]
NEEDED = {"boil water", "pour water over the tea bag"}  # what the world rewards


class State(TypedDict, total=False):
    attempt: int
    learned: list[str]
    plan: list[str]
    score: int


def recall(state: State, runtime: Runtime) -> State:
    found = runtime.store.search(NAMESPACE, query=GOAL, limit=20)
    return {"learned": [item.value["text"] for item in found]}


def act(state: State) -> State:
    """The scripted model: every action it has no learning against, in order."""
    useless = {t.split(" DOES NOT CONTRIBUTE")[0].lower() for t in state["learned"]
               if " DOES NOT CONTRIBUTE " in t}
    plan = [a for a in ACTIONS if a not in useless]
    score = 100 * sum(a in NEEDED for a in plan) // len(NEEDED)
    return {"plan": plan, "score": score}


def learn(state: State, runtime: Runtime) -> State:
    """The scripted reflection: what moved the score is necessary, the rest is not."""
    for action in state["plan"]:
        form = "SHOULD BE NECESSARY" if action in NEEDED else "DOES NOT CONTRIBUTE"
        runtime.store.put(NAMESPACE, action.replace(" ", "-"),
                          {"text": f"{action} {form} to {GOAL}",
                           "attempt": state["attempt"]})
    return {}


def build(store: CLINStore):
    graph = StateGraph(State)
    graph.add_node("recall", recall)
    graph.add_node("act", act)
    graph.add_node("learn", learn)
    graph.add_edge(START, "recall")
    graph.add_edge("recall", "act")
    graph.add_edge("act", "learn")
    graph.add_edge("learn", END)
    return graph.compile(store=store)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="langgraph_tea.db")
    parser.add_argument("--attempts", type=int, default=2)
    args = parser.parse_args()
    store = CLINStore(args.db)
    app = build(store)
    for attempt in range(1, args.attempts + 1):
        out = app.invoke({"attempt": attempt})
        print(f"attempt {attempt}: score {out['score']} in {len(out['plan'])} steps: "
              + ", ".join(out["plan"]))
    for item in store.search(NAMESPACE, query=GOAL):
        print(f"  {item.key}: {item.value['text']}")
    print("namespaces:", store.list_namespaces())
    store.close()


if __name__ == "__main__":
    main()
