"""LLM faults: transient errors and bad content at 20% are survived with bounded, counted
retries and nothing stored is lost; permanent errors stop with one line after saving."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from clin.agent import AgentSettings
from clin.cli import main
from clin.errors import TransientLLMError
from clin.llm import ScriptedLLM, openai_backend
from clin.llm.base import Message
from clin.llm.faults import ALL_FAULTS, FaultyLLM
from clin.llm.openai_backend import OpenAIChat
from clin.llm.retry import call_with_retries
from clin.memory import Memory
from clin.trials.runner import AdaptConfig, run_adapt
from tests.support.fake_openai import ALL_FAULTS as HTTP_FAULTS
from tests.support.fake_openai import FakeOpenAI
from tests.support.rel_helpers import (
    borrow_env,
    check_trials_whole,
    rows,
    scripted_answers,
    stderr_lines,
)

TASK = "find-living-thing"
ATTEMPTS = 5


def _no_sleep(_: float) -> None:
    pass


def test_faulty_llm_is_deterministic_and_bounded() -> None:
    def draw(seed: int) -> list[str]:
        llm = FaultyLLM(ScriptedLLM(["ok"] * 400), rate=0.2, seed=seed, sleep=_no_sleep)
        out = []
        for _ in range(200):
            try:
                out.append(llm.complete([Message(role="user", content="x")]).text)
            except TransientLLMError:
                out.append("gave-up")
        return out

    assert draw(7) == draw(7)
    assert draw(7) != draw(8)
    always = FaultyLLM(ScriptedLLM([]), rate=1.0, kinds=["429"], attempts=ATTEMPTS,
                       sleep=_no_sleep)
    with pytest.raises(TransientLLMError, match=f"after {ATTEMPTS} attempts"):
        always.complete([Message(role="user", content="x")])
    assert always.tries == ATTEMPTS
    with pytest.raises(ValueError):
        FaultyLLM(ScriptedLLM([]), kinds=["meteor"])


def _check_run(db: Path, run_id: int, trials: int) -> dict[str, int]:
    (status,) = rows(db, "SELECT status FROM runs WHERE id = ?", (run_id,))[0]
    assert status == "finished"
    done = rows(db, "SELECT idx FROM trials WHERE run_id = ? AND status = 'completed' "
                    "ORDER BY idx", (run_id,))
    assert [r[0] for r in done] == list(range(1, trials + 1))
    check_trials_whole(db)
    (max_attempts, total_attempts, calls) = rows(
        db, "SELECT max(attempts), sum(attempts), count(*) FROM llm_calls WHERE run_id = ?",
        (run_id,))[0]
    assert 1 <= max_attempts <= ATTEMPTS
    return {"attempts": total_attempts, "calls": calls, "max_attempts": max_attempts}


def test_wrapper_faults_survived_in_five_trial_run(tiny, db_path: Path) -> None:
    inner = ScriptedLLM(scripted_answers())
    llm = FaultyLLM(inner, rate=0.2, seed=7, attempts=ATTEMPTS, sleep=_no_sleep)
    cfg = AdaptConfig(task=TASK, trials=5, settings=AgentSettings(max_steps=6))
    with Memory(db_path) as mem:
        summary = run_adapt(cfg, env=tiny, llm=llm, mem=mem)
    figures = _check_run(db_path, summary.run_id, 5)
    assert set(llm.injected) == set(ALL_FAULTS), llm.injected  # every kind was exercised
    # every attempt, failed or not, is counted in llm_calls.attempts; every call is stored
    assert figures["attempts"] == llm.tries
    assert figures["calls"] == llm.calls
    assert sum(r.llm_attempts for r in summary.trials) == llm.tries
    (steps,) = rows(db_path, "SELECT count(*) FROM steps s JOIN trials t ON t.id = s.trial_id "
                             "WHERE t.run_id = ?", (summary.run_id,))[0]
    assert steps == sum(r.steps for r in summary.trials) > 0
    assert rows(db_path, "SELECT count(*) FROM learnings")[0][0] > 0


def test_http_faults_survived_through_openai_backend(
    tiny, db_path: Path, allow_model_requests: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the retries without their back-off sleeps (about 10 s of waiting, nothing checked)
    monkeypatch.setattr(openai_backend, "call_with_retries",
                        functools.partial(call_with_retries, sleep=_no_sleep))
    # the client's timeout is generous enough that only injected timeouts time out
    with FakeOpenAI(fault_rate=0.2, seed=95, timeout_s=1.5) as srv:
        llm = OpenAIChat("fake", base_url=srv.url, api_key="sk-test", timeout=1.0,
                         attempts=ATTEMPTS)
        cfg = AdaptConfig(task=TASK, trials=5, settings=AgentSettings(max_steps=6))
        with Memory(db_path) as mem:
            summary = run_adapt(cfg, env=tiny, llm=llm, mem=mem)
        stats = srv.stats()
    figures = _check_run(db_path, summary.run_id, 5)
    assert set(stats["injected"]) == set(HTTP_FAULTS), stats
    # one HTTP request per attempt: retries are neither lost nor multiplied by the client
    assert figures["attempts"] == stats["requests"]
    assert figures["calls"] == stats["requests"] - sum(
        stats["injected"].get(k, 0) for k in ("429", "500", "drop", "timeout", "garbage"))


@pytest.mark.parametrize(
    ("kind", "expect"),
    [("401", "rejected the API key"), ("404", "was not found"),
     ("400", "maximum context length")],
)
def test_permanent_error_stops_with_one_line_after_saving(
    kind: str, expect: str, tiny, db_path: Path, allow_model_requests: None,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    borrow_env(monkeypatch, tiny)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-key")
    # trial 1 needs 2 proposals + 1 reflection; the 5th answer (trial 2, step 2) fails for good
    with FakeOpenAI(permanent=kind, permanent_after=4) as srv:
        code = main(["run", "--task", TASK, "--trials", "3", "--max-steps", "2",
                     "--model", "openai:fake", "--base-url", srv.url, "--db", str(db_path)])
        requests = srv.requests
    captured = capsys.readouterr()
    errors = [ln for ln in stderr_lines(captured.err) if ln.startswith("error:")]
    assert code == 2
    assert len(errors) == 1 and expect in errors[0], captured.err
    assert "Traceback" not in captured.err + captured.out
    assert requests == 5  # a permanent error is not retried
    assert rows(db_path, "SELECT status FROM runs") == [("failed",)]
    assert rows(db_path, "SELECT idx, status FROM trials ORDER BY idx") == [
        (1, "completed"), (2, "failed")]
    assert rows(db_path, "SELECT steps FROM trials WHERE idx = 1") == [(2,)]
    check_trials_whole(db_path)
    # what was done is kept: --resume continues from trial 2 once the endpoint works again
    with FakeOpenAI() as srv:
        code = main(["run", "--task", TASK, "--trials", "3", "--max-steps", "2", "--resume",
                     "--model", "openai:fake", "--base-url", srv.url, "--db", str(db_path)])
    assert code == 0
    assert rows(db_path, "SELECT status FROM runs") == [("finished",)]
    assert rows(db_path, "SELECT idx, status FROM trials ORDER BY id") == [
        (1, "completed"), (2, "failed"), (2, "completed"), (3, "completed")]


def test_unreachable_endpoint_is_one_line(
    tiny, db_path: Path, allow_model_requests: None, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import socket

    borrow_env(monkeypatch, tiny)
    monkeypatch.setattr(openai_backend, "call_with_retries",
                        functools.partial(call_with_retries, sleep=_no_sleep))
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = main(["run", "--task", TASK, "--trials", "2", "--max-steps", "2",
                 "--model", "openai:fake", "--base-url", f"http://127.0.0.1:{port}/v1",
                 "--db", str(db_path)])
    captured = capsys.readouterr()
    errors = [ln for ln in stderr_lines(captured.err) if ln.startswith("error:")]
    assert code == 2
    assert len(errors) == 1 and "cannot reach" in errors[0], captured.err
    assert "Traceback" not in captured.err
    assert rows(db_path, "SELECT status FROM runs") == [("failed",)]
