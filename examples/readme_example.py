"""The README example of the memory library (README.md, "The memory in your own agent"), runnable as written."""

from clin.memory import Memory, Scope

mem = Memory("agent.db")  # one SQLite file, created if missing
scope = Scope(namespace="demo", agent="my-agent", task="make tea")

# 1. Record an attempt: (action, observation) pairs and a 0..100 score.
trace = [
    ("add sugar", "The cup is still empty."),
    ("boil water", "The kettle whistles."),
    ("pour water over the tea bag", "The water turns brown."),
]
mem.record_trial(scope, trace, score=100)


# 2. Reflect: any LangChain chat model, or a plain str -> str function.
def llm(prompt: str) -> str:
    return (
        "boiling water SHOULD BE NECESSARY to making tea\n"
        "pouring water over the tea bag SHOULD BE NECESSARY to making tea\n"
        "adding sugar DOES NOT CONTRIBUTE to making tea"
    )


print(mem.reflect(scope, llm=llm))

# 3. Recall what applies to this scope, most specific and most relevant first.
for learning in mem.recall(scope, query="water", k=5):
    print(learning.id, learning.text, f"(support {learning.support})")

# 4. A numbered block for the next prompt, within a token budget.
print(mem.render(scope, query="tea", budget_tokens=60).text)
mem.close()
