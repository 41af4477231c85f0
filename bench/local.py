"""The offline model end to end: ADAPT trials of grow-plant with SmolLM2 in llama.cpp, with
the KV prefix cache on and off, to show what the cache-friendly prompt layout buys.

Per-step time is what the agent books for the step (LLM calls including re-asks, the
simulator, overhead); per-trial time is wall clock for the whole trial, including the
environment reset and the end-of-trial reflection.
"""

from __future__ import annotations

import gc
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from clin.agent import AgentSettings, TrialResult
from clin.envs.scienceworld import ScienceWorld
from clin.memory import Memory
from clin.trials.runner import AdaptConfig, run_adapt

from .stats import BenchTable, mean, median

TASK = "grow-plant"
DEFAULT_TRIALS = 2
DEFAULT_STEPS = 15
ISSUE_TRIALS = 5
ISSUE_STEPS = 100


@dataclass
class LocalRun:
    prefix_cache: bool
    step_s: list[float]
    trial_s: list[float]
    controller_ms: list[float]
    prompt_tokens: list[int]
    reflection_ms: list[float]
    scores: list[float]
    steps: list[int]


def run_local(env: ScienceWorld, *, prefix_cache: bool, trials: int, max_steps: int) -> LocalRun:
    from clin.llm.local import LocalLlama

    llm = LocalLlama(prefix_cache=prefix_cache)
    cfg = AdaptConfig(task=TASK, variation=0, trials=trials, namespace="bench-local",
                      settings=AgentSettings(max_steps=max_steps))
    marks: list[float] = []
    trial_s: list[float] = []

    def on_trial(_: TrialResult) -> None:
        now = time.perf_counter()
        trial_s.append(now - marks[-1])
        marks.append(now)

    with (
        tempfile.TemporaryDirectory(prefix="clin-bench-local-") as tmp,
        Memory(Path(tmp) / "local.db") as mem,
    ):
        marks.append(time.perf_counter())
        summary = run_adapt(cfg, env=env, llm=llm, mem=mem, on_trial=on_trial)
        step_s = [
            (r["llm_ms"] + r["env_ms"] + r["overhead_ms"]) / 1000
            for r in mem.db.query(
                "SELECT s.llm_ms, s.env_ms, s.overhead_ms FROM steps s "
                "JOIN trials t ON t.id = s.trial_id WHERE t.run_id = ?",
                [summary.run_id],
            )
        ]
        calls = list(mem.db.query(
            "SELECT purpose, latency_ms, prompt_tokens FROM llm_calls WHERE run_id = ?",
            [summary.run_id],
        ))
    del llm
    gc.collect()
    return LocalRun(
        prefix_cache=prefix_cache,
        step_s=step_s,
        trial_s=trial_s,
        controller_ms=[c["latency_ms"] for c in calls if c["purpose"] == "controller"],
        prompt_tokens=[c["prompt_tokens"] or 0 for c in calls if c["purpose"] == "controller"],
        reflection_ms=[c["latency_ms"] for c in calls if c["purpose"] == "reflection"],
        scores=[t.score for t in summary.trials],
        steps=[t.steps for t in summary.trials],
    )


def local_table(runs: list[LocalRun], trials: int, max_steps: int) -> BenchTable:
    rows = [
        [
            "on" if r.prefix_cache else "off",
            f"{len(r.scores)} x {max_steps}",
            str(sum(r.steps)),
            f"{median(r.step_s):.2f}",
            f"{mean(r.step_s):.2f}",
            f"{mean(r.trial_s):.1f}",
            f"{median(r.controller_ms) / 1000:.2f}",
            f"{median(r.prompt_tokens):.0f}",
            f"{mean(r.reflection_ms) / 1000:.1f}",
            " / ".join(f"{s:g}" for s in r.scores),
        ]
        for r in runs
    ]
    notes = []
    by = {r.prefix_cache: r for r in runs}
    if True in by and False in by:
        on, off = median(by[True].controller_ms), median(by[False].controller_ms)
        notes.append(f"Prefix cache: controller call median {off / on:.1f}x faster with it on.")
    if (trials, max_steps) != (ISSUE_TRIALS, ISSUE_STEPS):
        notes.append(
            f"Reduced configuration ({trials} trials x {max_steps} steps per setting, not the "
            f"issue's {ISSUE_TRIALS} x {ISSUE_STEPS}) to fit a 2-core machine; run "
            f"`python -m bench local --trials {ISSUE_TRIALS} --max-steps {ISSUE_STEPS}` "
            "for the full one."
        )
    notes.append(
        "Model: SmolLM2-135M-Instruct Q4_1 in llama.cpp, JSON schema with an enum of the "
        "valid actions (grammar-constrained), temperature 0; step s = LLM + simulator + "
        "overhead as booked by the agent; trial s = wall clock incl. reset and reflection."
    )
    return BenchTable(
        key="local",
        title="3. Local model end to end (grow-plant 0, ADAPT)",
        columns=["prefix cache", "trials x max steps", "steps run", "median s/step",
                 "mean s/step", "mean s/trial", "median controller call s",
                 "median prompt tokens", "mean reflection s", "scores"],
        rows=rows,
        notes=notes,
    )


def probe_table(env: ScienceWorld) -> BenchTable:
    """One controller call on the kitchen state (about 1,500 valid actions), the prompt cold
    or already cached, the action constrained to the valid-action enum or free: separates
    prompt processing, which the prefix cache saves, from grammar-constrained decoding,
    which it does not."""
    from clin import controller
    from clin.llm.local import LocalLlama

    obs = env.reset(TASK, 0)
    obs = env.step("teleport to kitchen")
    messages = controller.build_messages(
        task=env.task_description(), memory_text="", history=[], step=2, score=obs.score,
        observation=obs.text, look=obs.look, inventory=obs.inventory, profile=env.profile,
    )
    llm = LocalLlama(prefix_cache=True)
    rows = []
    for label, schema in (
        (f"enum of {len(obs.valid_actions)} valid actions",
         controller.proposal_schema(obs.valid_actions)),
        ("free string", controller.proposal_schema(None)),
    ):
        cells = []
        for cold in (True, False):
            llm.prefix_cache = not cold  # cold: the whole prompt evaluated again
            w0, c0 = time.perf_counter(), time.process_time()
            done = llm.complete(messages, json_schema=schema,
                                max_tokens=controller.ANSWER_TOKENS)
            cells += [f"{time.perf_counter() - w0:.1f}", f"{time.process_time() - c0:.1f}"]
        rows.append([label, str(done.prompt_tokens), str(done.completion_tokens), *cells])
    del llm
    gc.collect()
    return BenchTable(
        key="probe",
        title="3b. One controller call: prefix cache vs action grammar (kitchen state)",
        columns=["action constraint", "prompt tokens", "completion tokens", "cold wall s",
                 "cold CPU s", "cached wall s", "cached CPU s"],
        rows=rows,
        notes=[("Same prompt twice: 'cold' after resetting llama.cpp's KV cache, 'cached' "
               "with the whole prompt already evaluated. CPU s is this process's CPU time.")],
    )
