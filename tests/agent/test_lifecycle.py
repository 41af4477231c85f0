"""Never hang (issue 22): the offline model opens and closes in bounded time, Ctrl-C and
SIGTERM reach a call in progress, and `clin` exits within seconds of a signal, leaving the
database consistent. Each case runs in a child process with a timeout, so a regression
fails here instead of freezing the suite."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from clin.llm.local import signals_deferred
from stress.checks import count

ROOT = Path(__file__).resolve().parents[2]


# A child's Ctrl-C raises KeyboardInterrupt whatever it inherits: Python installs that handler
# only where SIGINT is not ignored, and a shell's background job (`make test &`) ignores it.
CTRL_C = "import signal; signal.signal(signal.SIGINT, signal.default_int_handler)\n"


def _python(code: str, timeout: float, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", CTRL_C + textwrap.dedent(code)],
                          check=False, cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, **kw)


def test_signals_wait_for_the_end_of_a_deferred_block() -> None:
    # Python's own Ctrl-C handler, whatever an earlier test left (an in-process eval worker
    # ignores SIGINT)
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    got = []
    with pytest.raises(KeyboardInterrupt), signals_deferred():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
        got.append("block finished")
    signal.signal(signal.SIGINT, before)
    assert got == ["block finished"]


@pytest.mark.local_llm
def test_the_model_closes_at_once_when_it_never_answered() -> None:
    """Dropping llama.cpp's server before its task loop ran used to hang in most runs; five
    open/close cycles in one process would hang almost surely if it came back."""
    r = _python("""
        from clin.llm.local import LocalLlama
        for _ in range(5):
            with LocalLlama(n_ctx=512, n_threads=1):
                pass
        print("ok")
    """, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


@pytest.mark.local_llm
def test_ctrl_c_reaches_a_call_in_progress_and_the_model_still_closes() -> None:
    r = _python("""
        import os, signal, threading, time
        from clin.llm import guard
        from clin.llm.base import Message
        from clin.llm.local import LocalLlama
        guard.ALLOW_MODEL_REQUESTS = True
        llm = LocalLlama(n_ctx=2048, n_threads=1)
        threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT)).start()
        t = time.monotonic()
        try:
            llm.complete([Message(role="user", content="Write a long story.")],
                         max_tokens=1500)
            print("answered")
        except KeyboardInterrupt:
            print(f"interrupted {time.monotonic() - t:.1f}")
        t = time.monotonic()
        llm.close()
        print(f"closed {time.monotonic() - t:.1f}")
    """, timeout=120)
    assert r.returncode == 0, r.stderr
    interrupted, closed = r.stdout.split("\n")[:2]
    assert interrupted.startswith("interrupted") and float(interrupted.split()[1]) < 3, r.stdout
    assert float(closed.split()[1]) < 3, r.stdout


def test_a_stalled_cleanup_still_exits_and_shows_where() -> None:
    r = _python("""
        import os, signal, time
        from clin.cli.shutdown import bounded_exit
        def close_the_simulator():
            time.sleep(60)  # a cleanup that never ends
        with bounded_exit(cleanup_s=1):
            try:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(60)
            finally:
                close_the_simulator()
    """, timeout=30)
    assert r.returncode != 0
    assert "SIGTERM: stopping" in r.stderr
    assert "close_the_simulator" in r.stderr  # the watchdog's stack says what stalled


def test_a_second_signal_exits_at_once() -> None:
    r = _python("""
        import os, signal, time
        from clin.cli.shutdown import bounded_exit
        with bounded_exit(cleanup_s=30):
            try:
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(60)
            finally:
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(60)
    """, timeout=20)
    assert r.returncode == 128 + signal.SIGINT
    assert "SIGINT again: exiting now" in r.stderr


def _clin_run(db: Path) -> subprocess.Popen:
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("OPENAI_API_KEY", None)
    return subprocess.Popen(
        [sys.executable, "-c", "import sys; from clin.cli import main; sys.exit(main())",
         "run", "--task", "grow-plant", "--trials", "2", "--max-steps", "3", "--model",
         "local", "--db", str(db)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL, text=True)


def _wait_for_steps(db: Path, proc: subprocess.Popen, steps: int, limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline and proc.poll() is None:
        if count(db, "SELECT count(*) FROM steps") >= steps:
            return
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"no {steps} steps within {limit_s} s: {proc.communicate()[0]}")


@pytest.mark.scienceworld
@pytest.mark.local_llm
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_clin_run_stops_within_seconds_of_a_signal(tmp_path: Path, sig: int) -> None:
    """A real `clin run` (offline model, real ScienceWorld) signalled mid-trial exits within
    10 s with 128+signal; the run is `interrupted`, and the file passes integrity_check."""
    db = tmp_path / "clin.db"
    proc = _clin_run(db)
    _wait_for_steps(db, proc, 1, limit_s=120)
    t = time.monotonic()
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=30)
    took = time.monotonic() - t
    assert proc.returncode == 128 + sig, out
    assert took < 10, f"{took:.1f} s\n{out}"
    assert "interrupted: finished trials are kept" in out
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert [r[0] for r in conn.execute("SELECT status FROM runs")] == ["interrupted"]
        assert "running" not in {r[0] for r in conn.execute("SELECT status FROM trials")}
    finally:
        conn.close()
