"""A throwaway Ray cluster on this machine: `ray start --head` plus worker nodes started with
`ray start --address`, every port asked of the OS, stopped by process group at the end (never
`ray stop`, which would stop every Ray on the machine)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# No usage reporting; no token auth (a local Ray started elsewhere may have left a token in
# ~/.ray, which would switch a new cluster to token auth): the cluster binds 127.0.0.1 only.
# Ray's memory monitor is off: on a shared machine other jobs' memory would make it kill the
# test's actors (the kernel's OOM killer still applies).
QUIET = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled",
         "RAY_memory_monitor_refresh_ms": "0"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _node_ports() -> list[str]:
    return [f"--dashboard-agent-listen-port={free_port()}",
            f"--dashboard-agent-grpc-port={free_port()}",
            f"--metrics-export-port={free_port()}",
            f"--runtime-env-agent-port={free_port()}",
            f"--node-manager-port={free_port()}",
            f"--object-manager-port={free_port()}"]


class LocalCluster:
    """``with LocalCluster(tmp, nodes=2) as address: ...``; each node gets ``cpus`` CPUs.
    Worker processes find this repository (and ``tests``) through PYTHONPATH."""

    def __init__(self, tmp: Path, nodes: int = 2, cpus: int = 1, timeout_s: float = 120) -> None:
        self.tmp, self.nodes, self.cpus, self.timeout_s = tmp, nodes, cpus, timeout_s
        self.procs: list[subprocess.Popen[bytes]] = []
        self.address = ""

    def _start(self, args: list[str], log: str) -> None:
        env = {**os.environ, **QUIET,
               "PYTHONPATH": os.pathsep.join(p for p in (str(REPO),
                                                         os.environ.get("PYTHONPATH")) if p)}
        ray = str(Path(sys.executable).parent / "ray")
        with open(self.tmp / log, "wb") as out:
            self.procs.append(subprocess.Popen(
                [ray, "start", "--block", f"--num-cpus={self.cpus}", *_node_ports(), *args],
                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True))

    def __enter__(self) -> str:
        port = free_port()
        self.address = f"127.0.0.1:{port}"
        self._start(["--head", f"--port={port}", "--node-ip-address=127.0.0.1",
                     "--include-dashboard=false",
                     f"--temp-dir={self.tmp / 'ray'}"], "head.log")
        try:
            self._wait(1)
            for i in range(1, self.nodes):
                # Ray gives a joining node a fixed 30 s to register; on a loaded machine that
                # can run out, so a node that gave up is started again (a few times).
                for attempt in range(3):
                    self._start([f"--address={self.address}", "--node-ip-address=127.0.0.1"],
                                f"node{i}-{attempt}.log")
                    if self._wait(i + 1, quit_on_exit=self.procs[-1]):
                        break
                    _signal_group(self.procs[-1].pid, signal.SIGKILL)
                    self.procs.pop().wait()
                else:
                    raise RuntimeError(f"ray node {i} did not join; see {self.tmp}")
        except BaseException:
            self.stop()
            raise
        return self.address

    def alive_nodes(self) -> int:
        import ray

        try:
            ray.init(address=self.address, logging_level="ERROR", log_to_driver=False)
        except ConnectionError:
            return 0
        try:
            return sum(bool(n["Alive"]) for n in ray.nodes())
        finally:
            ray.shutdown()

    def _wait(self, nodes: int, quit_on_exit: subprocess.Popen[bytes] | None = None) -> bool:
        """Wait until ``nodes`` nodes are alive (True); False when ``quit_on_exit`` exits
        first. The head exiting, or the timeout, raises."""
        deadline = time.monotonic() + self.timeout_s
        while True:
            # Checked before connecting: ray.init() on a head that died at start-up waits for
            # its GCS for minutes instead of failing.
            if time.monotonic() > deadline or self.procs[0].poll() is not None:
                log = (self.tmp / "head.log").read_text()[-2000:]
                raise RuntimeError(f"ray cluster did not start {nodes} nodes:\n{log}")
            if quit_on_exit is not None and quit_on_exit.poll() is not None:
                return False
            if self.alive_nodes() >= nodes:
                return True
            time.sleep(1)

    def stop(self) -> None:
        """SIGTERM each node's process group, SIGKILL what is left after a grace period;
        Ray's worker processes exit when their raylet does."""
        for p in self.procs:
            _signal_group(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for p in self.procs:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for p in self.procs:
            _signal_group(p.pid, signal.SIGKILL)
            p.wait()
        self.procs = []

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass
