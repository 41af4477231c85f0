"""The real loop with real models: the offline llama.cpp model in-process, and the same
model behind llama.cpp's real OpenAI-compatible HTTP server on 127.0.0.1 used through
`openai:`."""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path

import pytest

from clin.agent import AgentSettings
from clin.cli import main
from clin.errors import LLMUnavailable
from clin.llm.base import Message
from clin.llm.cpu import THREADS_ENV
from clin.llm.local import (
    LocalLlama,
    default_model_path,
    server_params,
    start_server,
)
from clin.memory import Memory
from clin.trials.runner import AdaptConfig, run_adapt

# a real end-to-end run: the real model plays the real simulator
pytestmark = [pytest.mark.scienceworld, pytest.mark.local_llm]


def test_local_model_runs_a_real_trial(sw, mem: Memory, allow_model_requests) -> None:
    llm = LocalLlama(n_ctx=4096)
    cfg = AdaptConfig(task="grow-plant", variation=0, trials=1,
                      settings=AgentSettings(max_steps=3))
    s = run_adapt(cfg, env=sw, llm=llm, mem=mem)
    t = s.trials[0]
    assert t.steps >= 1 and t.prompt_tokens > 0 and t.completion_tokens > 0
    rows = list(mem.db.query("SELECT action, grounding FROM steps WHERE trial_id = ?",
                             [t.trial_id]))
    # schema-constrained decoding: in the first room (~115 valid actions, all offered) the
    # action is always one of the valid ones
    assert rows and rows[0]["grounding"] in ("constrained", "choice", "asked")
    assert all(r["grounding"] in ("constrained", "choice", "asked") for r in rows)
    calls = list(mem.db.query("SELECT purpose, prompt_tokens FROM llm_calls"))
    assert calls[-1]["purpose"] == "reflection"
    assert mem.db["trials"].get(t.trial_id)["status"] == "completed"


@pytest.fixture(scope="module")
def llama_server():
    """llama.cpp's OpenAI-compatible HTTP server (xllamacpp) on 127.0.0.1, a port the OS
    picks, serving the offline model."""
    server = start_server(server_params(default_model_path(), host="127.0.0.1", n_ctx=4096,
                                        n_threads=1, alias="smollm2"))
    address = server.listening_address
    assert address.startswith("http://127.0.0.1:") and not address.endswith(":0"), address
    with urllib.request.urlopen(f"{address}/health", timeout=30) as r:
        assert json.load(r)["status"] == "ok"
    yield f"{address}/v1"
    del server


def test_openai_backend_against_a_local_server(llama_server, tmp_path: Path, capsys,
                                               allow_model_requests, monkeypatch) -> None:
    db = tmp_path / "run.db"
    monkeypatch.setenv("OPENAI_API_KEY", "sk-local-test")
    code = main(["run", "--task", "grow-plant", "--trials", "1", "--max-steps", "1",
                 "--model", "openai:smollm2", "--base-url", llama_server, "--db", str(db)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "openai:smollm2" in captured.err
    with Memory(db) as m:
        trials = list(m.db.query("SELECT status, steps FROM trials ORDER BY idx"))
        assert [t["status"] for t in trials] == ["completed"]
        usage = list(m.db.query(
            "SELECT count(*) AS n, sum(prompt_tokens) AS p, sum(completion_tokens) AS c "
            "FROM llm_calls WHERE model = 'openai:smollm2'"))[0]
        assert usage["n"] >= 2 and usage["p"] > 0 and usage["c"] > 0
        assert b"sk-local-test" not in db.read_bytes()
    assert os.path.exists(db)


def test_controller_and_reflection_prompts_keep_their_own_cache(allow_model_requests) -> None:
    """Two KV slots: after a different prompt (a reflection) the controller's prompt is
    found again in its own slot, so only its new tail is evaluated."""
    play = [Message(role="system", content="You play a text game. " + "Go north. " * 60),
            Message(role="user", content="Step 1. What now?")]
    sums = [Message(role="system", content="Summarize what went wrong. " + "It failed. " * 60),
            Message(role="user", content="The attempt.")]
    with LocalLlama(n_ctx=2048, n_threads=1) as llm:
        llm.complete(play, max_tokens=1)
        llm.complete(sums, max_tokens=1)
        play[1] = Message(role="user", content="Step 2. What now?")
        llm.complete(play, max_tokens=1)
        t = llm.last_timings
    assert t["cache_n"] > 150 and t["prompt_n"] < 20, t


def test_threads_change_between_calls_on_a_real_model(allow_model_requests,
                                                      monkeypatch) -> None:
    """The reload a stall asks for happens before the next call: the model answers, and its
    socket (for /tokenize) works, with the new thread count."""
    monkeypatch.delenv(THREADS_ENV, raising=False)
    with LocalLlama(n_ctx=1024, n_threads=None) as llm:
        assert llm.auto_threads
        say = [Message(role="user", content="Say hi.")]
        assert llm.complete(say, max_tokens=4).completion_tokens
        llm.threads.pending = 2 if llm.n_threads == 1 else 1
        wanted = llm.threads.pending
        assert llm.complete(say, max_tokens=4).completion_tokens
        assert llm.n_threads == wanted and llm.threads.pending is None
        assert llm.count_tokens("hello world") == 2


def test_threads_from_the_environment_are_used_as_given(allow_model_requests,
                                                        monkeypatch) -> None:
    monkeypatch.setenv(THREADS_ENV, "1")
    with LocalLlama(n_ctx=512) as llm:
        assert (llm.n_threads, llm.auto_threads) == (1, False)
    monkeypatch.delenv(THREADS_ENV)
    # the demo model is capped at 4 automatic threads; a model of your own is not
    with LocalLlama(default_model_path(), n_ctx=512, n_threads=1) as own:
        assert own.max_threads == len(os.sched_getaffinity(0))


def test_local_model_counts_tokens_and_reports_overflow(allow_model_requests) -> None:
    with LocalLlama(n_ctx=512) as llm:
        assert llm.count_tokens("hello world") == 2
        with pytest.raises(LLMUnavailable, match="context"):
            llm.complete([Message(role="user", content="word " * 2000)], max_tokens=8)
