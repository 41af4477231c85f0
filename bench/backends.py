"""The offline backend's candidates side by side (issue 14): xllamacpp (prebuilt llama.cpp
server wheel) with CLIN's compact grammar, xllamacpp with its own ``response_format``
JSON-schema mode, and llama-cpp-python (compiled at install). Same SmolLM2 model, same
recorded prompts, same thread count, one run.

The prompts are CLIN's real controller calls: the first steps of grow-plant 0 replayed along
ScienceWorld's gold path (each with its valid-action enum schema), plus one kitchen state
offered with the enum bounded to 200 actions and with all ~1,500. Each binding runs in
``bench/backend_worker.py`` under the interpreter of a venv that has it installed
(``--lcp-python`` for llama-cpp-python, which CLIN no longer depends on).

Install time is measured in a throwaway venv with pip and no cache. llama-cpp-python
compiles llama.cpp for many minutes, so its install is only timed with ``--lcp-install``
(or given with ``--lcp-install-s`` from a separate timed ``pip install``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clin import controller
from clin.agent import AgentSettings, enum_actions, run_trial
from clin.envs.scienceworld import ScienceWorld
from clin.llm.base import Completion, Message
from clin.llm.local import default_model_path
from clin.memory import Memory, Scope

from .replay import TASK, VARIATION, GoldPlayer, RecordingEnv, gold_actions, prepare_gold
from .stats import BenchTable, median

WORKER = Path(__file__).with_name("backend_worker.py")
XLLAMA = ("xllamacpp", "xllamacpp-json")
LCP = "llama-cpp-python"
INSTALL = {"xllamacpp": "xllamacpp", LCP: "llama-cpp-python>=0.3.7"}
DEFAULT_STEPS = 6
REFERENCE_STEPS = 100  # the estimate's trial length: a 5-trial demo runs a few hundred


class Recorder:
    """A schema-enforcing stand-in LLM that answers with the gold path and records each
    controller call's messages and schema."""

    name = "bench-recorder"
    enforces_schema = True

    def __init__(self, player: GoldPlayer) -> None:
        self.player = player
        self.calls: list[tuple[list[dict], dict | None]] = []

    def complete(self, messages: list[Message], *, json_schema: dict[str, Any] | None = None,
                 max_tokens: int = 256) -> Completion:
        self.calls.append(([m.model_dump() for m in messages], json_schema))
        return Completion(text=self.player(messages), model=self.name)


def record_prompts(env: ScienceWorld, steps: int) -> dict[str, Any]:
    """CLIN's controller calls for the first ``steps`` gold steps, and one kitchen state with
    the enum at 200 and at all valid actions."""
    gold = prepare_gold(gold_actions(env))
    rec = RecordingEnv(env)
    llm = Recorder(GoldPlayer(gold.actions, rec))
    settings = AgentSettings(max_steps=steps, reflect=False)
    scope = Scope(namespace="bench", env=env.name, task=TASK, variation=VARIATION)
    with tempfile.TemporaryDirectory(prefix="clin-bench-") as tmp, \
            Memory(Path(tmp) / "b.db") as mem:
        run_id = mem.start_run(protocol="bench-backends", model=llm.name, scope=scope,
                               trials_requested=1)
        run_trial(env=rec, llm=llm, mem=mem, run_id=run_id, scope=scope, idx=1, task=TASK,
                  variation=VARIATION, settings=settings)
    step_calls = [c for c in llm.calls if len(c[0]) == 2][:steps]

    env.reset(TASK, VARIATION)
    obs = env.step("teleport to kitchen")
    messages = [m.model_dump() for m in controller.build_messages(
        task=env.task_description(), memory_text="", history=[], step=2, score=obs.score,
        observation=obs.text, look=obs.look, inventory=obs.inventory, profile=env.profile,
    )]
    always = env.profile.always_valid
    every = enum_actions(obs.valid_actions, always, limit=len(obs.valid_actions) + 10)
    enums = {
        "200": [messages, controller.proposal_schema(enum_actions(obs.valid_actions, always))],
        str(len(every)): [messages, controller.proposal_schema(every)],
    }
    return {"probe": step_calls[-1][0], "steps": step_calls, "enums": enums}


def install_seconds(spec: str) -> float:
    """``pip install --no-cache-dir SPEC`` into a fresh venv under /tmp, timed."""
    with tempfile.TemporaryDirectory(prefix="clin-bench-install-") as tmp:
        subprocess.run([sys.executable, "-m", "venv", tmp], check=True)
        t0 = time.perf_counter()
        subprocess.run([f"{tmp}/bin/python", "-m", "pip", "install", "-qq", "--no-cache-dir",
                        "--disable-pip-version-check", spec], check=True)
        return time.perf_counter() - t0


def run_worker(python: str, backend: str, job: dict[str, Any]) -> dict[str, Any]:
    done = subprocess.run([python, str(WORKER)], input=json.dumps({**job, "backend": backend}),
                          stdout=subprocess.PIPE, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{backend} worker failed (exit {done.returncode})")
    return json.loads(done.stdout)


@dataclass
class Options:
    steps: int = DEFAULT_STEPS
    threads: int = 1
    lcp_python: str | None = None
    lcp_install: bool = False
    lcp_install_s: float | None = None


def run_backends(env: ScienceWorld, opts: Options) -> list[dict[str, Any]]:
    job = {"model": str(default_model_path()), "threads": opts.threads, "n_ctx": 8192,
           **record_prompts(env, opts.steps)}
    results = []
    x_install = install_seconds(INSTALL["xllamacpp"])
    for backend in XLLAMA:
        r = run_worker(sys.executable, backend, job)
        r["install_s"] = x_install
        results.append(r)
    if opts.lcp_python:
        r = run_worker(opts.lcp_python, LCP, job)
        r["install_s"] = install_seconds(INSTALL[LCP]) if opts.lcp_install else opts.lcp_install_s
        results.append(r)
    return results


def _step_s(calls: list[dict], key: str = "wall_s") -> float:
    return median([c[key] for c in calls])


def backends_table(results: list[dict[str, Any]], opts: Options) -> BenchTable:
    rows = []
    for r in results:
        pre = r["prefill"]
        dec = r["decode"]
        decode_s = max(dec["many"]["wall_s"] - dec["one"]["wall_s"], 1e-6)
        n_dec = max((dec["many"]["completion_tokens"] or 1) - 1, 1)
        on, off = r["steps"]["on"], r["steps"]["off"]
        enums = r["enums"]
        install = r.get("install_s")
        estimate = (None if install is None
                    else install + r["load"]["wall_s"] + REFERENCE_STEPS * _step_s(on))
        rows.append([
            r["backend"],
            "n/a" if install is None else f"{install:.0f}",
            f"{r['load']['wall_s']:.1f}",
            f"{pre['prompt_tokens'] / pre['wall_s']:.0f}",
            f"{n_dec / decode_s:.0f}",
            f"{_step_s(on):.2f} / {_step_s(on, 'cpu_s'):.2f}",
            f"{_step_s(off):.2f} / {_step_s(off, 'cpu_s'):.2f}",
            f"{median([c['completion_tokens'] or 0 for c in on]):.0f}",
            f"{sum(c['valid'] for c in on + off)}/{len(on + off)}",
            *(f"{e['wall_s']:.1f} / {e['cpu_s']:.1f} ({'ok' if e['valid'] else 'INVALID'})"
              for e in enums.values()),
            "n/a" if estimate is None else f"{estimate:.0f}",
        ])
    enum_labels = list(results[0]["enums"]) if results else ["200", "all"]
    return BenchTable(
        key="backends",
        title="8. Offline backend candidates (issue 14): install, speed, schema enforcement",
        columns=["backend", "install s", "load s", "prefill tok/s", "decode tok/s",
                 "step s cached (wall / CPU)", "step s uncached (wall / CPU)",
                 "completion tokens/step", "valid actions",
                 *(f"enum {n}: s wall / CPU" for n in enum_labels),
                 f"install + load + {REFERENCE_STEPS} steps s"],
        rows=rows,
        notes=[
            (f"{opts.steps} controller calls of grow-plant 0 (gold path, enum schema, "
            f"max_tokens 160), temperature 0, n_threads = n_threads_batch = {opts.threads}; "
            "step s is the median call; CPU s is the worker process's CPU time (less "
            "sensitive to the machine's load than wall time)."),
            ("xllamacpp: CLIN's backend (llguidance grammar, one-line JSON); xllamacpp-json: "
            "the server's response_format json_schema (pretty-printed JSON, more tokens); "
            "llama-cpp-python: the former backend (json_object + schema grammar)."),
            "install s: pip, empty cache, fresh venv; llama-cpp-python compiles llama.cpp.",
        ],
    )
