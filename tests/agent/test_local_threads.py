"""The offline backend's thread choice (clin.llm.cpu): idle cores when the model loads, and
back to one thread when a call shows threads stalling on busy cores."""

from __future__ import annotations

import pytest

from clin.errors import ModelSpecError
from clin.llm import cpu
from clin.llm.cpu import ThreadPolicy, auto_threads, idle_cores, too_slow


@pytest.mark.parametrize(("idle", "threads"), [
    (0.0, 1), (0.6, 1), (1.0, 1), (1.8, 2), (1.95, 2), (3.9, 4), (15.9, cpu.MAX_AUTO_THREADS),
])
def test_threads_follow_the_idle_cores(idle: float, threads: int) -> None:
    assert auto_threads(idle) == threads


def test_a_model_of_your_own_may_use_every_idle_core() -> None:
    assert auto_threads(14.6, cap=16) == 14 and auto_threads(31.0, cap=16) == 16


def test_idle_cores_reads_this_machine() -> None:
    idle = idle_cores(0.05)
    assert 0.0 <= idle <= (cpu.os.cpu_count() or 1)


def test_idle_cores_without_proc_stat_counts_every_core(monkeypatch) -> None:
    monkeypatch.setattr(cpu, "cpu_times", lambda cpus: None)
    monkeypatch.setattr(cpu, "quota_cores", lambda: None)
    assert idle_cores(0.0) == len(cpu.os.sched_getaffinity(0))


def test_slow_means_several_times_the_best_call() -> None:
    assert not too_slow(30.0, None)
    assert not too_slow(30.0, 14.0)
    assert too_slow(14.0 * cpu.SLOW_FACTOR + 1, 14.0)


def _policy(n_threads: int, auto: bool, monkeypatch) -> tuple[ThreadPolicy, list[int]]:
    """The thread policy of a model on a 4-CPU machine (``auto``: threads chosen from the
    idle cores, here ``n_threads`` of them), and the thread counts it reloads with."""
    monkeypatch.setattr(cpu, "usable_cpus", lambda: {0, 1, 2, 3})
    monkeypatch.setattr(cpu, "idle_cores", lambda *_: float(n_threads))
    policy = ThreadPolicy(None if auto else n_threads, cpu.MAX_AUTO_THREADS)
    assert policy.n_threads == n_threads and policy.auto == auto
    return policy, []


def call(policy: ThreadPolicy, starts: list[int], ms_per_token: float, tokens: int = 40) -> None:
    """What `LocalLlama.complete` does around one call: a due reload first (``starts``
    records it), then the speed watch."""
    policy.reload(starts.append)
    policy.watch({"predicted_n": tokens, "predicted_ms": tokens * ms_per_token})


def test_a_stall_halves_the_threads_before_the_next_call(monkeypatch) -> None:
    policy, starts = _policy(4, True, monkeypatch)
    monkeypatch.setattr(cpu, "idle_cores", lambda *_: 0.5)  # others hold the cores
    call(policy, starts, 14.0)  # the best
    call(policy, starts, 17.5)  # a little slower: fine
    assert starts == [] and policy.n_threads == 4
    call(policy, starts, 900.0)  # stalled: the answer is returned, the reload waits
    assert starts == [] and policy.pending == 2
    call(policy, starts, 900.0)  # reloaded with 2 first, then stalled again
    assert starts == [2] and policy.pending == 1
    for _ in range(cpu.RECHECK_CALLS + 1):
        call(policy, starts, 900.0)
    assert starts == [2, 1] and policy.n_threads == 1  # busy cores: stays at one


def test_threads_come_back_when_the_cores_are_idle_again(monkeypatch) -> None:
    policy, starts = _policy(2, True, monkeypatch)
    call(policy, starts, 14.0)
    call(policy, starts, 900.0)  # a burst of other work
    monkeypatch.setattr(cpu, "idle_cores", lambda *_: 1.9)
    for _ in range(cpu.RECHECK_CALLS - 1):
        call(policy, starts, 30.0)
    assert starts == [1] and policy.pending is None  # sampled every RECHECK_CALLS calls
    call(policy, starts, 30.0)
    assert policy.pending == 2
    call(policy, starts, 14.0)
    assert starts == [1, 2] and policy.n_threads == 2


def test_a_failed_reload_keeps_the_count_that_worked(monkeypatch) -> None:
    policy, starts = _policy(2, True, monkeypatch)

    def start(threads: int) -> str:
        starts.append(threads)
        if threads == 1:
            raise ModelSpecError("llama.cpp could not load it")
        return f"server with {threads}"

    policy.pending = 1
    assert policy.reload(start) == "server with 2"
    assert starts == [1, 2] and policy.n_threads == 2


def test_threads_the_caller_chose_are_kept(monkeypatch) -> None:
    policy, starts = _policy(2, False, monkeypatch)
    call(policy, starts, 14.0)
    call(policy, starts, 900.0)
    call(policy, starts, 900.0)
    assert starts == [] and policy.n_threads == 2


def test_short_answers_say_nothing_about_speed(monkeypatch) -> None:
    policy, starts = _policy(2, True, monkeypatch)
    call(policy, starts, 14.0)
    call(policy, starts, 450.0, tokens=2)
    call(policy, starts, 14.0)
    assert starts == [] and policy.best_ms_per_token == 14.0


def test_idle_cores_stay_within_the_cgroup_quota(monkeypatch) -> None:
    monkeypatch.setattr(cpu, "usable_cpus", lambda: set(range(8)))
    monkeypatch.setattr(cpu, "quota_cores", lambda: 2.0)
    monkeypatch.setattr(cpu, "cpu_times", lambda cpus: None)
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
    assert cpu.cpu_times({1}) == (40, 50)
    assert cpu.cpu_times({0, 1}) == (80, 100)
    assert cpu.cpu_times({7}) is None


def test_threads_from_the_environment(monkeypatch) -> None:
    monkeypatch.delenv(cpu.THREADS_ENV, raising=False)
    assert cpu.threads_from_env() is None
    monkeypatch.setenv(cpu.THREADS_ENV, " 3 ")
    assert cpu.threads_from_env() == 3


@pytest.mark.parametrize("bad", ["0", "two", "-1", "1.5"])
def test_bad_thread_count_in_the_environment_is_one_clear_error(monkeypatch, bad: str) -> None:
    monkeypatch.setenv(cpu.THREADS_ENV, bad)
    with pytest.raises(ModelSpecError, match=f"{cpu.THREADS_ENV} must be a whole number"):
        cpu.threads_from_env()


def test_bad_thread_count_stops_clin_run_with_one_line(monkeypatch, capsys, tmp_path) -> None:
    from clin.cli import main

    monkeypatch.setenv(cpu.THREADS_ENV, "many")
    code = main(["run", "--task", "grow-plant", "--trials", "1", "--model", "local",
                 "--db", str(tmp_path / "c.db")])  # stops before a JVM or model loads
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error")]
    assert code == 2
    assert err and "CLIN_LOCAL_THREADS must be a whole number" in err[0]
    assert not (tmp_path / "c.db").exists()


@pytest.mark.parametrize("workers", [1, 2, 3, 64])
def test_eval_workers_split_the_cores(monkeypatch, workers: int) -> None:
    from clin.trials.jobs import share_cores

    monkeypatch.setattr(cpu.os, "environ", {})  # what share_cores sets stays in this test
    share_cores(workers)
    cores = len(cpu.usable_cpus())
    assert cpu.threads_from_env() == min(cpu.MAX_AUTO_THREADS, max(1, cores // workers))


def test_eval_workers_keep_the_users_thread_count(monkeypatch) -> None:
    from clin.trials.jobs import share_cores

    monkeypatch.setattr(cpu.os, "environ", {cpu.THREADS_ENV: "3"})
    share_cores(8)
    assert cpu.threads_from_env() == 3
