"""A small real database for the viewer tests: two trials of grow-plant on the real
ScienceWorld with a scripted LLM; trial 2 cites the learning trial 1's reflection wrote."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from clin.agent import AgentSettings
from clin.llm import ScriptedLLM
from clin.memory import Memory
from clin.trials.runner import AdaptConfig, RunSummary, run_adapt
from tests.conftest import proposal

LEARNING = "opening the door to the kitchen SHOULD BE NECESSARY to finding the seeds"


def make_run_db(path: Path, env: object) -> RunSummary:
    llm = ScriptedLLM([
        proposal("open door to kitchen", why="the seeds may be in the kitchen"),
        proposal("walk to the kitchen"),  # paraphrase: grounded (normalized)
        proposal("look around"),
        f"{LEARNING}\nlooking around the kitchen MAY BE NECESSARY to finding the seeds",
        proposal("open door to kitchen", used=[1], why="learning 1 says so"),
        proposal("go to kitchen", used=[1, 2]),
        proposal("inventory"),
        LEARNING,
    ])
    cfg = AdaptConfig(task="grow-plant", variation=0, trials=2,
                      settings=AgentSettings(max_steps=3))
    with Memory(path) as mem:
        summary = run_adapt(cfg, env=env, llm=llm, mem=mem)
    llm.assert_complete()
    return summary


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


@contextlib.contextmanager
def chromium() -> Iterator[object]:
    """A headless Chromium (Debian's) driven by playwright."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium "
                    "(apt-get install -y chromium; .ci/run does it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def start_viewer(db: Path) -> tuple[subprocess.Popen, str]:
    """``clin view`` on ``db`` as a user starts it; returns the process and its address."""
    clin = Path(sys.executable).with_name("clin")
    proc = subprocess.Popen([str(clin), "view", "--db", str(db), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line: list[str] = []
    reader = threading.Thread(target=lambda: line.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout=120)
    if not line or "http://127.0.0.1:" not in line[0]:
        proc.kill()
        raise AssertionError(f"clin view printed no address: {line!r} {proc.stderr.read()!r}")
    url = line[0].split(" at ")[1].split()[0]
    assert urlsplit(url).hostname == "127.0.0.1" and urlsplit(url).port
    return proc, url.rstrip("/")


@contextlib.contextmanager
def serving(db: Path) -> Iterator[str]:
    """``clin view`` on ``db`` for the length of the block; yields its address."""
    proc, url = start_viewer(db)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
