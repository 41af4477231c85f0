"""The real loop with real models: the offline llama.cpp model in-process, and the same
model behind a real OpenAI-compatible HTTP server on 127.0.0.1 used through `openai:`."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from clin.cli import main
from clin.memory import Memory
from clin.trials.runner import AdaptConfig, run_adapt

from clin.agent import AgentSettings
from clin.llm.local import LocalLlama, default_model_path

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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    port = _free_port()
    log = open(tmp_path_factory.mktemp("server") / "server.log", "w+b")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(default_model_path()),
         "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096",
         "--model_alias", "smollm2"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            raise RuntimeError(log.read().decode()[-2000:])
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        raise RuntimeError("llama_cpp.server did not start")
    yield f"http://127.0.0.1:{port}/v1"
    proc.terminate()
    proc.wait(timeout=20)
    log.close()


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
