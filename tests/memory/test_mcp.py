"""``clin mcp`` driven by the official SDK's client over stdio, as a real subprocess: the
tools and their schemas, every tool's round trip, reflection answered by the client's
sampling callback (handshake and 2026-07-28 connections), tool errors, a client killed
mid-call, two servers on one file, stdout purity, and the HTTP transport's Host/Origin
checks. Every wait is bounded (``anyio.fail_after``, subprocess timeouts)."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import IO, Any

import anyio
import pytest

pytest.importorskip("mcp")

import httpx
from mcp import Client, StdioServerParameters
from mcp.types import CreateMessageResult, TextContent

from clin.cli import main
from clin.memory import Memory, NotALearning, Scope
from clin.memory.mcp import NO_LLM, MemoryServer
from tests.support.fake_openai import FakeOpenAI

CLIN = str(Path(sys.executable).with_name("clin"))
CALL_S = 30  # one tool call, reflection included
TEST_S = 90  # a whole test body
TOOLS = {"record_trial", "reflect", "recall", "render", "add_learning", "list_learnings",
         "learning_history"}
TEA = [
    "boiling water SHOULD BE NECESSARY to making tea",
    "adding sugar DOES NOT CONTRIBUTE to making tea",
]
TRACE = [{"action": "add sugar", "observation": "The cup is still empty."},
         {"action": "boil water", "observation": "The kettle whistles."}]


def run(body: Callable[[], Awaitable[None]], limit: float = TEST_S) -> None:
    async def bounded() -> None:
        with anyio.fail_after(limit):
            await body()

    anyio.run(bounded)


def server(db: Path, *args: str, env: dict[str, str] | None = None) -> StdioServerParameters:
    return StdioServerParameters(command=CLIN, args=["mcp", "--db", str(db), *args],
                                 env={**os.environ, **(env or {})})


class Sampler:
    """The client's model: answers every sampling request with the tea learnings and keeps
    what it was asked."""

    def __init__(self, answer: str = "\n".join(TEA)) -> None:
        self.answer = answer
        self.asked: list[Any] = []

    async def __call__(self, ctx: Any, params: Any) -> CreateMessageResult:
        self.asked.append(params)
        return CreateMessageResult(role="assistant", model="client-model",
                                   content=TextContent(type="text", text=self.answer))


def line_reader(stream: IO[str]) -> Callable[[float], str]:
    """``next_line(deadline)``: the stream's next line ("" at its end), read on a thread so
    that no wait outlives the deadline (a server that hangs fails the test, not the run)."""
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line)
        lines.put("")

    threading.Thread(target=pump, daemon=True).start()

    def next_line(deadline: float) -> str:
        try:
            return lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            pytest.fail("no line before the deadline")

    return next_line


async def call(client: Client, tool: str, args: dict[str, Any] | None = None) -> Any:
    result = await client.call_tool(tool, args or {}, read_timeout_seconds=CALL_S)
    assert not result.is_error, result.content
    return result.structured_content


async def error_of(client: Client, tool: str, args: dict[str, Any]) -> str:
    result = await client.call_tool(tool, args, read_timeout_seconds=CALL_S)
    assert result.is_error and result.structured_content is None
    return result.content[0].text


# ---------------------------------------------------------------- over stdio
@pytest.mark.parametrize("mode", ["legacy", "auto"])
def test_every_tool_round_trips_and_reflection_asks_the_clients_model(
    tmp_path: Path, mode: str
) -> None:
    """record_trial -> reflect (the sampling callback answers) -> recall returns what it
    wrote; then render, add_learning, list_learnings, learning_history and the resources."""
    db = tmp_path / "mem.db"
    model = Sampler()
    scope = {"namespace": "demo", "agent": "bot", "task": "make tea"}

    async def body() -> None:
        async with Client(server(db), sampling_callback=model, mode=mode,
                          read_timeout_seconds=CALL_S) as client:
            listed = await client.list_tools()
            tools = {t.name: t for t in listed.tools}
            assert set(tools) == TOOLS
            assert all(t.output_schema for t in tools.values())  # structured, from pydantic
            assert "scope" in tools["recall"].input_schema["properties"]
            assert {"answer", "asked"}.isdisjoint(tools["reflect"].input_schema["properties"])

            rec = await call(client, "record_trial", {"scope": scope, "trace": TRACE,
                                                      "score": 100})
            assert rec["steps"] == 2
            out = await call(client, "reflect", {"scope": scope})
            assert out == {"llm": "mcp-client:client-model", "added": 2, "kept": 0,
                           "promoted": 0, "demoted": 0, "retired": 0, "rejected": 0}
            assert len(model.asked) == 1
            asked = model.asked[0]
            assert "causal" in asked.system_prompt
            assert "boil water" in asked.messages[0].content.text  # the trial it reflects on

            found = (await call(client, "recall", {"scope": scope, "query": "water"}))
            texts = [x["text"] for x in found["learnings"]]
            assert texts[0] == TEA[0] and set(texts) == set(TEA)
            assert found["learnings"][0]["support"] == 1
            assert found["learnings"][0]["relation"] == "necessary"

            block = await call(client, "render", {"scope": scope, "query": "sugar"})
            assert block["text"].startswith("[1] adding sugar") and len(block["ids"]) == 2

            added = await call(client, "add_learning", {
                "scope": scope, "text": "warming the pot MAY BE NECESSARY to making tea"})
            assert added["status"] == "added"
            listed_all = await call(client, "list_learnings", {"scope": {
                "namespace": "demo", "agent": "bot"}})
            assert len(listed_all["learnings"]) == 3
            assert await call(client, "list_learnings", {}) == {"learnings": []}  # default ns

            first = found["learnings"][0]["id"]
            hist = await call(client, "learning_history", {"learning_id": first})
            assert [e["event"] for e in hist["events"]] == ["added"]
            assert hist["events"][0]["score"] == 100

            res = await client.read_resource("clin://learnings/demo/bot/make tea")
            held = json.loads(res.contents[0].text)["learnings"]
            assert len(held) == 3

    run(body)
    with Memory(db) as mem:  # what the client saw is what the file holds
        got = {x.text for x in mem.recall(Scope(namespace="demo", agent="bot", task="make tea"))}
        assert set(TEA) <= got
        row = mem.db.execute("SELECT model, purpose FROM llm_calls").fetchone()
        assert tuple(row) == ("mcp-client:client-model", "reflection")


def test_errors_are_tool_errors_with_the_clis_line(tmp_path: Path) -> None:
    db = tmp_path / "mem.db"
    with Memory(tmp_path / "probe.db") as probe, pytest.raises(NotALearning) as refused:
        probe.add_learning(Scope(), "tea is nice")

    async def body() -> None:
        async with Client(server(db), read_timeout_seconds=CALL_S) as client:  # no sampling
            assert await error_of(client, "recall", {"k": "many"}) == (  # wrong type
                "error: bad arguments to recall: k: Input should be a valid integer, unable "
                "to parse string as an integer")
            assert await error_of(client, "record_trial", {"trace": TRACE}) == (
                "error: bad arguments to record_trial: score: Field required")
            assert await error_of(client, "recall", {"scope": {"room": "x"}, "k": -1}) == (
                "error: bad arguments to recall: scope.room: Extra inputs are not permitted; "
                "k: Input should be greater than or equal to 0")
            assert await error_of(client, "add_learning", {"text": "tea is nice"}) == (
                f"error: {refused.value}")
            assert await error_of(client, "add_learning", {"text": TEA[0], "trial_id": 99}) == (
                "error: trial 99 does not exist: pass the id record_trial returned, or none")
            nan = await error_of(client, "record_trial", {"trace": TRACE, "score": "nan"})
            assert nan.startswith("error: ") and "\n" not in nan
            await call(client, "record_trial", {"trace": TRACE, "score": 10})
            no_llm = await error_of(client, "reflect", {})  # no sampling, no --model
            assert no_llm == f"error: {NO_LLM}"
            assert (await error_of(client, "learning_history", {"learning_id": 99})) == (
                "error: learning 99 does not exist")
            assert (await call(client, "recall", {}))["learnings"] == []  # still serving

    run(body)


def test_without_sampling_reflection_uses_model(tmp_path: Path) -> None:
    """A client with no sampling: ``--model`` (an OpenAI-compatible fake server) reflects."""
    db = tmp_path / "mem.db"

    async def body(url: str) -> None:
        params = server(db, "--model", "openai:fake-model", "--base-url", url,
                        env={"OPENAI_API_KEY": "test"})
        async with Client(params, read_timeout_seconds=CALL_S) as client:
            await call(client, "record_trial", {"trace": TRACE, "score": 30})
            out = await call(client, "reflect", {})
            assert out["llm"] == "openai:fake-model" and out["added"] == 2
            found = await call(client, "recall", {})
            assert any("looking around" in x["text"] for x in found["learnings"])

    with FakeOpenAI() as fake:
        run(lambda: body(fake.url))
        assert fake.answered == 1


def test_two_servers_share_one_database(tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    n = 8

    async def body() -> None:
        async with Client(server(db), read_timeout_seconds=CALL_S) as a, \
                Client(server(db), read_timeout_seconds=CALL_S) as b:
            async def write(client: Client, who: str) -> None:
                for i in range(n):
                    await call(client, "record_trial", {"scope": {"agent": who},
                                                        "trace": TRACE, "score": i})
                    await call(client, "add_learning", {
                        "scope": {"task": "t"},
                        "text": f"step {who} {i:02d} MAY BE NECESSARY to finishing the task"})

            async with anyio.create_task_group() as tg:
                tg.start_soon(write, a, "alice")
                tg.start_soon(write, b, "bob")
            seen_a = await call(a, "recall", {"scope": {"task": "t"}, "k": 100})
            seen_b = await call(b, "recall", {"scope": {"task": "t"}, "k": 100})
            assert len(seen_a["learnings"]) == len(seen_b["learnings"]) == 2 * n

    run(body)
    con = sqlite3.connect(db)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert con.execute("SELECT count(*) FROM trials").fetchone()[0] == 2 * n
    finally:
        con.close()


KILLED_CLIENT = """
import anyio, os, sys
from mcp import Client, StdioServerParameters
trace = [{"action": f"step {i}", "observation": "x" * 2000} for i in range(200)]
async def main():
    params = StdioServerParameters(command=sys.argv[1], args=["mcp", "--db", sys.argv[2]])
    async with Client(params, read_timeout_seconds=30) as c:
        me = str(os.getpid())
        kids = [p for p in os.listdir("/proc") if p.isdigit()
                and open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[1] == me]
        print("server", kids[0], flush=True)
        i = 0
        while True:
            await c.call_tool("record_trial", {"trace": trace, "score": i % 100})
            i += 1
            print("called", i, flush=True)
anyio.run(main)
"""


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the server's pid in /proc")
def test_client_killed_mid_call_leaves_the_database_intact(tmp_path: Path) -> None:
    """The client dies (SIGKILL) while its calls stream in: the server sees its stdin close
    and exits, and every stored trial is whole."""
    db = tmp_path / "mem.db"
    script = tmp_path / "client.py"
    script.write_text(KILLED_CLIENT)
    client = subprocess.Popen([sys.executable, str(script), CLIN, str(db)],
                              stdout=subprocess.PIPE, text=True)
    server_pid = None
    try:
        deadline = time.monotonic() + 60
        assert client.stdout is not None
        next_line = line_reader(client.stdout)
        while time.monotonic() < deadline:
            line = next_line(deadline)
            if not line:
                break
            if line.startswith("server"):
                server_pid = int(line.split()[1])
            if line.startswith("called 3"):
                break
        assert server_pid is not None, "the client never reported its server"
        time.sleep(0.05)  # into the next call
        client.send_signal(signal.SIGKILL)
        client.wait(timeout=10)
        deadline = time.monotonic() + 20
        while Path(f"/proc/{server_pid}").exists() and time.monotonic() < deadline:
            stat = Path(f"/proc/{server_pid}/stat").read_text().rsplit(")", 1)[1].split()
            if stat[0] == "Z":  # exited; its parent (the client) is gone too
                break
            time.sleep(0.1)
        else:
            if Path(f"/proc/{server_pid}").exists():
                os.kill(server_pid, signal.SIGKILL)
                pytest.fail("the server outlived its client by 20 s")
    finally:
        if client.poll() is None:
            client.kill()
            client.wait(timeout=10)
    con = sqlite3.connect(db)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        trials = con.execute("SELECT id, steps FROM trials").fetchall()
        assert len(trials) >= 3
        for tid, steps in trials:  # no half-written attempt
            assert steps == 200
            assert con.execute("SELECT count(*) FROM steps WHERE trial_id = ?",
                               [tid]).fetchone()[0] == 200
    finally:
        con.close()


def test_stdout_is_protocol_only_and_stderr_names_the_absolute_db(tmp_path: Path) -> None:
    """A raw JSON-RPC session with a relative --db: every stdout line is a JSON-RPC message;
    stderr names the file the server resolved from its working directory."""
    lines = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "raw", "version": "0"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
            "name": "recall", "arguments": {}}},
        {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
            "name": "add_learning", "arguments": {"text": "nonsense"}}},
    ]
    proc = subprocess.Popen([CLIN, "mcp", "--db", "rel.db"], cwd=tmp_path,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdin is not None and proc.stdout is not None
        for msg in lines:
            proc.stdin.write(json.dumps(msg) + "\n")
        proc.stdin.flush()
        answers: dict[int, dict[str, Any]] = {}
        deadline = time.monotonic() + 60
        next_line = line_reader(proc.stdout)
        while len(answers) < 3:
            line = next_line(deadline)
            assert line, "the server closed stdout early"
            msg = json.loads(line)  # anything else on stdout fails here
            assert msg["jsonrpc"] == "2.0"
            if "id" in msg:
                answers[msg["id"]] = msg
        proc.stdin.close()  # the client is gone
        rest = []
        while line := next_line(deadline):
            rest.append(line)
        proc.wait(timeout=20)
        assert proc.stderr is not None
        err = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    assert proc.returncode == 0
    for line in rest:
        assert json.loads(line)["jsonrpc"] == "2.0"
    assert answers[2]["result"]["structuredContent"] == {"learnings": []}
    assert answers[3]["result"]["isError"] is True
    assert f"memory {tmp_path.resolve() / 'rel.db'} " in err
    assert (tmp_path / "rel.db").exists()


def test_a_bad_db_or_option_is_one_line_and_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """In process (the CLI is a function; tests/cli/test_cli_usage.py runs the console
    script): each refusal comes before a server would start."""
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "notes.db"
    bad.write_text("not sqlite")
    for args in (["--db", str(bad)], ["--model", "potato"], ["--transport", "pigeon"]):
        assert main(["mcp", *args]) == 2
        out = capsys.readouterr()
        assert out.out == ""
        assert out.err.startswith("error: ") and out.err.count("\n") == 1, out.err


# ---------------------------------------------------------------- over HTTP
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listeners(port: int) -> list[str]:
    """The local addresses (hex, as /proc/net/tcp and tcp6 write them) listening on port."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if Path(table).exists():
            for row in Path(table).read_text().splitlines()[1:]:
                local, state = row.split()[1], row.split()[3]
                address, _, hex_port = local.rpartition(":")
                if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                    found.append(address)
    return found


def test_http_binds_loopback_and_refuses_foreign_host_and_origin(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen([CLIN, "mcp", "--db", str(tmp_path / "mem.db"), "--transport",
                             "http", "--port", str(port)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        deadline = time.monotonic() + 60
        while True:
            with socket.socket() as s:
                s.settimeout(1)
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert proc.poll() is None, proc.communicate(timeout=10)
            assert time.monotonic() < deadline, "the HTTP server never listened"
            time.sleep(0.2)
        if Path("/proc/net/tcp").exists():  # every listening socket on the port: 127.0.0.1
            assert listeners(port) == ["0100007F"]  # never 0.0.0.0, nor :: (IPv6, dual stack)

        init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "raw", "version": "0"}}}
        headers = {"Content-Type": "application/json",
                   "Accept": "application/json, text/event-stream"}
        with httpx.Client(timeout=10) as h:
            foreign_host = h.post(url, json=init, headers={**headers, "Host": "evil.example"})
            assert foreign_host.status_code == 421
            foreign_origin = h.post(url, json=init, headers={
                **headers, "Origin": "http://evil.example"})
            assert foreign_origin.status_code == 403
            own = h.post(url, json=init, headers={**headers,
                                                  "Origin": f"http://127.0.0.1:{port}"})
            assert own.status_code == 200

        async def body() -> None:
            async with Client(url, read_timeout_seconds=CALL_S) as client:
                await call(client, "record_trial", {"trace": TRACE, "score": 50})
                added = await call(client, "add_learning", {
                    "text": "boiling water SHOULD BE NECESSARY to making tea"})
                assert added["status"] == "added"

        run(body)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate(timeout=10)
    assert f"on http://127.0.0.1:{port}/mcp" in err


# ---------------------------------------------------------------- in process
def test_reflection_falls_back_to_the_injected_llm_in_process(tmp_path: Path) -> None:
    """``MemoryServer`` used from Python: a client without sampling, an ``llm_factory``
    built once, on the first reflection."""
    built: list[int] = []

    def factory() -> Callable[[str], str]:
        built.append(1)
        return lambda prompt: "\n".join(TEA)

    srv = MemoryServer(tmp_path / "mem.db", namespace="ns", llm_factory=factory,
                       llm_label="scripted")

    async def body() -> None:
        async with Client(srv.mcp, read_timeout_seconds=CALL_S) as client:
            assert await error_of(client, "reflect", {}) == (
                "error: no completed trial recorded for Scope(namespace='ns', "
                "agent='clin', env=None, task=None, variation=None): call record_trial first")
            for _ in range(2):
                await call(client, "record_trial", {"trace": TRACE, "score": 80})
                out = await call(client, "reflect", {})
                assert out["llm"] == "scripted"
            assert out["kept"] == 2
            found = await call(client, "recall", {"scope": {"namespace": "ns"}})
            assert [x["support"] for x in found["learnings"]] == [2, 2]

    try:
        run(body)
    finally:
        srv.close()
    assert built == [1]  # built on the first reflection, once


def test_example_client_runs(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, str(root / "examples" / "mcp_client.py"), "--db",
                          "agent.db"], capture_output=True, text=True, timeout=150,
                         check=False, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == ("tools: add_learning, learning_history, list_learnings, recall, "
                        "record_trial, reflect, render")
    assert lines[2].startswith("sampling: asked to reflect")
    assert "'llm': 'mcp-client:scripted', 'added': 2" in lines[3]
    assert lines[4] == "  #1 boiling water SHOULD BE NECESSARY to making tea (support 1)"
    assert lines[-1] == "refused: True"
    assert f"memory {tmp_path.resolve() / 'agent.db'} " in out.stderr


def test_bench_mcp_fills_its_table() -> None:
    """``python -m bench mcp`` keeps working (shape only, never timings)."""
    from bench.mcp import mcp_table, run_mcp

    table = mcp_table(run_mcp(calls=1, starts=1))
    assert [r[0] for r in table.rows][:2] == ["start-up to tools listed (s)",
                                              "recall (k=10, query) (ms)"]
    assert len(table.rows) == 8 and all(r[-1] in ("1",) for r in table.rows)
    assert "MiB connected and idle" in table.notes[0]


@pytest.mark.parametrize("mode", ["legacy", "auto"])
def test_declined_sampling_changes_nothing(tmp_path: Path, mode: str) -> None:
    """A client that refuses the sampling request gets its own refusal back as the call's
    error; the trial stays unreflected, so a later reflect works."""
    from mcp import MCPError
    from mcp.types import ErrorData

    answers = iter([ErrorData(code=-1, message="user declined"), None])

    async def sampling(ctx: Any, params: Any) -> Any:
        answer = next(answers)
        return answer or await Sampler()(ctx, params)

    srv = MemoryServer(tmp_path / "mem.db")

    async def body() -> None:
        async with Client(srv.mcp, sampling_callback=sampling, mode=mode,
                          read_timeout_seconds=CALL_S) as client:
            await call(client, "record_trial", {"trace": TRACE, "score": 60})
            with pytest.raises(MCPError, match="user declined"):
                await client.call_tool("reflect", {}, read_timeout_seconds=CALL_S)
            assert (await call(client, "recall", {}))["learnings"] == []
            assert (await call(client, "reflect", {}))["added"] == 2

    try:
        run(body)
    finally:
        srv.close()


def test_without_the_extra_clin_mcp_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from clin.cli import main

    monkeypatch.setitem(sys.modules, "clin.memory.mcp", None)  # as if mcp were missing
    assert main(["mcp", "--db", str(tmp_path / "x.db")]) == 2
    err = capsys.readouterr().err
    assert err == "error: clin mcp needs the mcp extra: pip install 'clin-agent[mcp]'\n"
    assert not (tmp_path / "x.db").exists()


def test_ids_beyond_sqlite_integers_are_refused_arguments(tmp_path: Path) -> None:
    """An id no SQLite row can have is a bad argument (it was an OverflowError: a crash)."""
    srv = MemoryServer(tmp_path / "mem.db")
    huge = 2**70

    async def body() -> None:
        async with Client(srv.mcp, read_timeout_seconds=CALL_S) as client:
            for tool, args in [("learning_history", {"learning_id": huge}),
                               ("add_learning", {"text": TEA[0], "trial_id": huge}),
                               ("reflect", {"trial_id": huge})]:
                text = await error_of(client, tool, args)
                assert "less than or equal to 9223372036854775807" in text, (tool, text)

    try:
        run(body)
    finally:
        srv.close()


@pytest.mark.parametrize("mode", ["legacy", "auto"])
def test_reflect_merges_into_the_trial_its_model_was_asked_about(
    tmp_path: Path, mode: str
) -> None:
    """Another writer records a newer trial in the scope while the client's model is
    thinking: the answer still goes to the trial in the prompt it answered."""
    db = tmp_path / "mem.db"
    srv = MemoryServer(db)
    asked: list[str] = []

    async def sampling(ctx: Any, params: Any) -> CreateMessageResult:
        asked.append(params.messages[0].content.text)
        if len(asked) == 1:  # a second server (or client) on the same file
            with Memory(db) as other:
                other.record_trial(Scope(), [("grind the beans", "Coffee smell.")], 10)
        return await Sampler()(ctx, params)

    async def body() -> None:
        async with Client(srv.mcp, sampling_callback=sampling, mode=mode,
                          read_timeout_seconds=CALL_S) as client:
            await call(client, "record_trial", {"trace": TRACE, "score": 90})
            assert (await call(client, "reflect", {}))["added"] == 2

    try:
        run(body)
    finally:
        srv.close()
    with Memory(db) as mem:
        (reflected,) = mem.db.execute(
            "SELECT DISTINCT e.trial_id FROM learning_events e").fetchall()
        steps = [r[0] for r in mem.db.execute(
            "SELECT action FROM steps WHERE trial_id = ?", [reflected[0]])]
    assert all(a in asked[-1] for a in steps)  # what the model read is what it learned from


def test_a_model_that_cannot_start_is_the_reflections_error(tmp_path: Path) -> None:
    """``--model`` built on the first reflection fails (no API key, no model file): the
    client reads why, not the SDK's bare 'Error executing tool reflect'."""

    def factory() -> Callable[[str], str]:
        raise RuntimeError("OPENAI_API_KEY is not set: export it")

    srv = MemoryServer(tmp_path / "mem.db", llm_factory=factory, llm_label="openai:m")

    async def body() -> None:
        async with Client(srv.mcp, read_timeout_seconds=CALL_S) as client:
            await call(client, "record_trial", {"trace": TRACE, "score": 80})
            assert await error_of(client, "reflect", {}) == (
                "error: cannot start the reflection LLM (openai:m): OPENAI_API_KEY is not "
                "set: export it")

    try:
        run(body)
    finally:
        srv.close()


def test_a_port_in_use_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from clin.cli import main

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        argv = ["mcp", "--db", str(tmp_path / "m.db"), "--transport", "http", "--port",
                str(port)]
        assert main(argv) == 2
    err = capsys.readouterr().err
    assert err == (f"error: cannot listen on 127.0.0.1:{port}: Address already in use; "
                   "pass another --port\n")
