"""The offline backend's thread choice: idle cores when the model loads, and back to one
thread when a call shows threads stalling on busy cores."""

from __future__ import annotations

from typing import Any

import pytest

from clin.errors import ModelSpecError
from clin.llm import local
from clin.llm.local import LocalLlama, auto_threads, idle_cores, too_slow


@pytest.mark.parametrize(("idle", "threads"), [
    (0.0, 1), (0.6, 1), (1.0, 1), (1.8, 2), (1.95, 2), (3.9, 4), (15.9, local.MAX_AUTO_THREADS),
])
def test_threads_follow_the_idle_cores(idle: float, threads: int) -> None:
    assert auto_threads(idle) == threads


def test_idle_cores_reads_this_machine() -> None:
    idle = idle_cores(0.05)
    assert 0.0 <= idle <= (local.os.cpu_count() or 1)


def test_idle_cores_without_proc_stat_counts_every_core(monkeypatch) -> None:
    monkeypatch.setattr(local, "_cpu_times", lambda: None)
    assert idle_cores(0.0) == len(local.os.sched_getaffinity(0))


def test_slow_means_several_times_the_best_call() -> None:
    assert not too_slow(30.0, None)
    assert not too_slow(30.0, 14.0)
    assert too_slow(14.0 * local.SLOW_FACTOR + 1, 14.0)


def _bare(n_threads: int, auto: bool, monkeypatch) -> tuple[LocalLlama, list[int]]:
    """A LocalLlama with no model behind it; `_start` records the thread count it loads with."""
    llm = LocalLlama.__new__(LocalLlama)
    llm.auto_threads, llm.n_threads, llm._best_ms_per_token = auto, n_threads, None
    llm._calls_at_one = 0
    llm._server, llm._dir = object(), ""
    starts: list[int] = []

    def start() -> Any:
        starts.append(llm.n_threads)
        return object()

    monkeypatch.setattr(llm, "_start", start)
    return llm, starts


def test_stalling_threads_reload_the_model_with_one(monkeypatch) -> None:
    llm, starts = _bare(2, True, monkeypatch)
    llm._watch_speed({"predicted_n": 40, "predicted_ms": 560.0})  # 14 ms a token: the best
    llm._watch_speed({"predicted_n": 40, "predicted_ms": 700.0})  # a little slower: fine
    assert starts == [] and llm.n_threads == 2
    llm._watch_speed({"predicted_n": 40, "predicted_ms": 40 * 900.0})  # stalled
    assert starts == [1] and llm.n_threads == 1
    monkeypatch.setattr(local, "idle_cores", lambda *_: 0.7)  # still busy
    for _ in range(local.RECHECK_CALLS):
        llm._watch_speed({"predicted_n": 40, "predicted_ms": 40 * 900.0})
    assert starts == [1] and llm.n_threads == 1


def test_threads_come_back_when_the_cores_are_idle_again(monkeypatch) -> None:
    llm, starts = _bare(2, True, monkeypatch)
    llm._watch_speed({"predicted_n": 40, "predicted_ms": 560.0})
    llm._watch_speed({"predicted_n": 40, "predicted_ms": 40 * 900.0})  # a burst of other work
    monkeypatch.setattr(local, "idle_cores", lambda *_: 1.9)
    for _ in range(local.RECHECK_CALLS - 1):
        llm._watch_speed({"predicted_n": 40, "predicted_ms": 800.0})
    assert starts == [1]  # looked at only every RECHECK_CALLS calls
    llm._watch_speed({"predicted_n": 40, "predicted_ms": 800.0})
    assert starts == [1, 2] and llm.n_threads == 2
    llm._watch_speed({"predicted_n": 40, "predicted_ms": 560.0})  # fast again: stays
    assert starts == [1, 2]


def test_threads_the_caller_chose_are_kept(monkeypatch) -> None:
    llm, starts = _bare(2, False, monkeypatch)
    llm._watch_speed({"predicted_n": 40, "predicted_ms": 560.0})
    llm._watch_speed({"predicted_n": 40, "predicted_ms": 40 * 900.0})
    assert starts == [] and llm.n_threads == 2


def test_short_answers_say_nothing_about_speed(monkeypatch) -> None:
    llm, starts = _bare(2, True, monkeypatch)
    llm._watch_speed({"predicted_n": 40, "predicted_ms": 560.0})
    llm._watch_speed({"predicted_n": 2, "predicted_ms": 900.0})
    assert starts == [] and llm._best_ms_per_token == 14.0


def test_threads_from_the_environment(monkeypatch) -> None:
    monkeypatch.delenv(local.THREADS_ENV, raising=False)
    assert local.threads_from_env() is None
    monkeypatch.setenv(local.THREADS_ENV, " 3 ")
    assert local.threads_from_env() == 3


@pytest.mark.parametrize("bad", ["0", "two", "-1", "1.5"])
def test_bad_thread_count_in_the_environment_is_one_clear_error(monkeypatch, bad: str) -> None:
    monkeypatch.setenv(local.THREADS_ENV, bad)
    with pytest.raises(ModelSpecError, match=f"{local.THREADS_ENV} must be a whole number"):
        local.threads_from_env()


def test_bad_thread_count_stops_clin_run_with_one_line(monkeypatch, capsys, tmp_path) -> None:
    from clin.cli import main

    monkeypatch.setenv(local.THREADS_ENV, "many")
    code = main(["run", "--task", "grow-plant", "--trials", "1", "--model", "local",
                 "--db", str(tmp_path / "c.db")])
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error")]
    assert code == 2
    assert err and "CLIN_LOCAL_THREADS must be a whole number" in err[0]


@pytest.mark.parametrize("workers", [1, 2, 3, 64])
def test_eval_workers_split_the_cores(monkeypatch, workers: int) -> None:
    from clin.trials.eval import share_cores

    monkeypatch.setattr(local.os, "environ", {})  # what share_cores sets stays in this test
    share_cores(workers)
    cores = len(local.os.sched_getaffinity(0))
    assert local.threads_from_env() == max(1, cores // workers)


def test_eval_workers_keep_the_users_thread_count(monkeypatch) -> None:
    from clin.trials.eval import share_cores

    monkeypatch.setattr(local.os, "environ", {local.THREADS_ENV: "3"})
    share_cores(8)
    assert local.threads_from_env() == 3
