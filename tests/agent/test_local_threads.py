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


def test_a_model_of_your_own_may_use_every_idle_core() -> None:
    assert auto_threads(14.6, cap=16) == 14 and auto_threads(31.0, cap=16) == 16


def test_idle_cores_reads_this_machine() -> None:
    idle = idle_cores(0.05)
    assert 0.0 <= idle <= (local.os.cpu_count() or 1)


def test_idle_cores_without_proc_stat_counts_every_core(monkeypatch) -> None:
    monkeypatch.setattr(local, "_cpu_times", lambda cpus: None)
    monkeypatch.setattr(local, "_quota_cores", lambda: None)
    assert idle_cores(0.0) == len(local.os.sched_getaffinity(0))


def test_slow_means_several_times_the_best_call() -> None:
    assert not too_slow(30.0, None)
    assert not too_slow(30.0, 14.0)
    assert too_slow(14.0 * local.SLOW_FACTOR + 1, 14.0)


def _bare(n_threads: int, auto: bool, monkeypatch) -> tuple[LocalLlama, list[int]]:
    """A LocalLlama with no model behind it on a 4-CPU machine; `_start` records the thread
    count it loads with, and `call` stands for one answered call of the given speed."""
    llm = LocalLlama.__new__(LocalLlama)
    llm.auto_threads, llm.n_threads, llm._best_ms_per_token = auto, n_threads, None
    llm._calls_since_change, llm._pending_threads = 0, None
    llm.max_threads = local.MAX_AUTO_THREADS
    llm._server, llm._dir = object(), ""
    monkeypatch.setattr(local, "usable_cpus", lambda: {0, 1, 2, 3})
    starts: list[int] = []

    def start() -> Any:
        starts.append(llm.n_threads)
        return object()

    monkeypatch.setattr(llm, "_start", start)
    return llm, starts


def call(llm: LocalLlama, ms_per_token: float, tokens: int = 40) -> None:
    """What `complete` does around one call: a due reload first, then the speed watch."""
    llm._reload_if_due()
    llm._watch_speed({"predicted_n": tokens, "predicted_ms": tokens * ms_per_token})


def test_a_stall_halves_the_threads_before_the_next_call(monkeypatch) -> None:
    llm, starts = _bare(4, True, monkeypatch)
    monkeypatch.setattr(local, "idle_cores", lambda *_: 0.5)  # others hold the cores
    call(llm, 14.0)  # the best
    call(llm, 17.5)  # a little slower: fine
    assert starts == [] and llm.n_threads == 4
    call(llm, 900.0)  # stalled: the answer is returned, the reload waits for the next call
    assert starts == [] and llm._pending_threads == 2
    call(llm, 900.0)  # reloaded with 2 first, then stalled again
    assert starts == [2] and llm._pending_threads == 1
    for _ in range(local.RECHECK_CALLS + 1):
        call(llm, 900.0)
    assert starts == [2, 1] and llm.n_threads == 1  # busy cores: stays at one


def test_threads_come_back_when_the_cores_are_idle_again(monkeypatch) -> None:
    llm, starts = _bare(2, True, monkeypatch)
    call(llm, 14.0)
    call(llm, 900.0)  # a burst of other work
    monkeypatch.setattr(local, "idle_cores", lambda *_: 1.9)
    for _ in range(local.RECHECK_CALLS - 1):
        call(llm, 30.0)
    assert starts == [1] and llm._pending_threads is None  # sampled every RECHECK_CALLS calls
    call(llm, 30.0)
    assert llm._pending_threads == 2
    call(llm, 14.0)
    assert starts == [1, 2] and llm.n_threads == 2


def test_a_failed_reload_keeps_the_count_that_worked(monkeypatch) -> None:
    llm, starts = _bare(2, True, monkeypatch)

    def start() -> Any:
        starts.append(llm.n_threads)
        if llm.n_threads == 1:
            raise local.ModelSpecError("llama.cpp could not load it")
        return object()

    monkeypatch.setattr(llm, "_start", start)
    llm._pending_threads = 1
    llm._reload_if_due()
    assert starts == [1, 2] and llm.n_threads == 2 and llm._server is not None


def test_threads_the_caller_chose_are_kept(monkeypatch) -> None:
    llm, starts = _bare(2, False, monkeypatch)
    call(llm, 14.0)
    call(llm, 900.0)
    call(llm, 900.0)
    assert starts == [] and llm.n_threads == 2


def test_short_answers_say_nothing_about_speed(monkeypatch) -> None:
    llm, starts = _bare(2, True, monkeypatch)
    call(llm, 14.0)
    call(llm, 450.0, tokens=2)
    call(llm, 14.0)
    assert starts == [] and llm._best_ms_per_token == 14.0


def test_idle_cores_stay_within_the_cgroup_quota(monkeypatch) -> None:
    monkeypatch.setattr(local, "usable_cpus", lambda: set(range(8)))
    monkeypatch.setattr(local, "_quota_cores", lambda: 2.0)
    monkeypatch.setattr(local, "_cpu_times", lambda cpus: None)
    assert idle_cores(0.0) == 2.0


def test_cpu_times_count_only_this_process_cpus(tmp_path, monkeypatch) -> None:
    stat = tmp_path / "stat"
    stat.write_text("cpu  10 0 10 80 0 0 0 0\n"
                    "cpu0 5 0 5 40 0 0 0 0\n"
                    "cpu1 5 0 5 40 0 0 0 0\n"
                    "intr 1 2 3\n")
    real_open = open
    monkeypatch.setattr("builtins.open",
                        lambda f, *a, **k: real_open(stat if f == "/proc/stat" else f, *a, **k))
    assert local._cpu_times({1}) == (40, 50)
    assert local._cpu_times({0, 1}) == (80, 100)
    assert local._cpu_times({7}) is None


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
                 "--db", str(tmp_path / "c.db")])  # stops before a JVM or model loads
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error")]
    assert code == 2
    assert err and "CLIN_LOCAL_THREADS must be a whole number" in err[0]
    assert not (tmp_path / "c.db").exists()


@pytest.mark.parametrize("workers", [1, 2, 3, 64])
def test_eval_workers_split_the_cores(monkeypatch, workers: int) -> None:
    from clin.trials.eval import share_cores

    monkeypatch.setattr(local.os, "environ", {})  # what share_cores sets stays in this test
    share_cores(workers)
    cores = len(local.usable_cpus())
    assert local.threads_from_env() == min(local.MAX_AUTO_THREADS, max(1, cores // workers))


def test_eval_workers_keep_the_users_thread_count(monkeypatch) -> None:
    from clin.trials.eval import share_cores

    monkeypatch.setattr(local.os, "environ", {local.THREADS_ENV: "3"})
    share_cores(8)
    assert local.threads_from_env() == 3
