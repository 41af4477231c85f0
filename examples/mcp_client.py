"""An MCP client using CLIN's memory: it starts ``clin mcp`` over stdio with the official
SDK, records an attempt, lets its own model reflect through MCP sampling, and recalls.

The "model" here is a scripted sampling callback; a real client (a desktop or IDE assistant)
answers sampling with the model it already runs.

    pip install 'clin-agent[mcp]'
    python examples/mcp_client.py --db /tmp/agent.db
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import anyio
from mcp import Client, StdioServerParameters
from mcp.types import CreateMessageResult, TextContent

SCOPE = {"namespace": "demo", "agent": "my-agent", "task": "make tea"}
TRACE = [
    {"action": "add sugar", "observation": "The cup is still empty."},
    {"action": "boil water", "observation": "The kettle whistles."},
    {"action": "pour water over the tea bag", "observation": "The water turns brown."},
]


async def my_model(context, params) -> CreateMessageResult:
    """The client's LLM, asked by the server to reflect (MCP sampling)."""
    print(f"sampling: asked to reflect ({len(params.messages[0].content.text)} characters)")
    return CreateMessageResult(role="assistant", model="scripted", content=TextContent(
        type="text", text="boiling water SHOULD BE NECESSARY to making tea\n"
                          "adding sugar DOES NOT CONTRIBUTE to making tea"))


async def main(db: Path) -> None:
    with anyio.fail_after(120):  # never hang, whatever the server does
        await session(db)


async def session(db: Path) -> None:
    clin = shutil.which("clin") or str(Path(sys.executable).with_name("clin"))
    server = StdioServerParameters(command=clin, args=["mcp", "--db", str(db.resolve())])
    async with Client(server, sampling_callback=my_model, read_timeout_seconds=60) as client:
        tools = await client.list_tools()
        print("tools:", ", ".join(sorted(t.name for t in tools.tools)))
        trial = await client.call_tool("record_trial", {"scope": SCOPE, "trace": TRACE,
                                                        "score": 100})
        print("recorded trial", trial.structured_content["trial_id"])
        done = await client.call_tool("reflect", {"scope": SCOPE})
        print("reflected:", done.structured_content)
        found = await client.call_tool("recall", {"scope": SCOPE, "query": "water", "k": 5})
        for lr in found.structured_content["learnings"]:
            print(f"  #{lr['id']} {lr['text']} (support {lr['support']})")
        block = await client.call_tool("render", {"scope": SCOPE, "budget_tokens": 60})
        print(block.structured_content["text"])
        bad = await client.call_tool("add_learning", {"scope": SCOPE, "text": "tea is nice"})
        print("refused:", bad.is_error)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=Path("mcp_agent.db"))
    anyio.run(main, parser.parse_args().db)
