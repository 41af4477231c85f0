"""Framework overhead per step: what the agent itself costs, with the LLM and the simulator
taken out (``TrialResult.overhead_ms``: prompt building, grounding, memory rendering and the
SQLite writes of the step and its LLM call)."""

from __future__ import annotations

from .replay import ReplayResult
from .stats import BenchTable, median, percentile, verdict

TARGET_MEDIAN_MS = 5.0
TARGET_P95_MS = 20.0


def overhead_table(replay: ReplayResult) -> BenchTable:
    t = replay.result
    oh = t.overhead_ms
    med, p95 = median(oh), percentile(oh, 95)
    row = [
        str(t.steps),
        f"{med:.2f}",
        f"{p95:.2f}",
        f"{max(oh):.1f}" if oh else "-",
        f"{median(replay.env_ms):.1f}",
        f"{t.score:g}",
        t.stop_reason,
        str(replay.reasks),
    ]
    g = replay.gold
    sw = replay.env == "scienceworld"
    notes = [
        f"Load average when it ran: {replay.load}.",
        (f"Median <= {TARGET_MEDIAN_MS:g} ms: {verdict(med <= TARGET_MEDIAN_MS)}; "
         f"p95 <= {TARGET_P95_MS:g} ms: {verdict(p95 <= TARGET_P95_MS)}."),
        (f"Replayed {len(g.actions)} actions: {replay.env}'s gold path without its "
        f"{g.skipped_numbers} numeric answer(s) to ambiguous requests (the agent answers "
        f"those itself) and with {g.fillers} 'look around' breaking runs of five identical "
        "actions (the agent's repeated-action stop rule); 8 seeded learnings in memory"
        + ("." if sw else " (ScienceWorld's: recalled and rendered all the same).")),
        ("Scripted LLM answers in 0 ms; every step also writes its step row and LLM-call row "
        "to SQLite (WAL, synchronous=NORMAL) in a temporary directory."),
    ]
    exact = [ms for ms, g in zip(oh, replay.grounding) if g == "exact"]
    other = [ms for ms, g in zip(oh, replay.grounding) if g != "exact"]
    if exact and other:
        notes.append(
            f"Steps whose proposal was a valid action verbatim ({len(exact)}): median "
            f"{median(exact):.2f} ms, p95 {percentile(exact, 95):.2f} ms; the other "
            f"{len(other)} (normalized, parser, fuzzy, re-ask, ambiguity choice...): median "
            f"{median(other):.2f} ms, max {max(other):.1f} ms. A proposal that is not a valid "
            "action verbatim normalizes the valid actions sharing its verb (cached across "
            "steps); sending it to the simulator's parser is simulator time, not overhead."
        )
    if t.score < 100:
        notes.append(
            "The replay did not reach 100: the agent lost part of a perfect plan (see "
            "`python -m bench ceiling`, which checks every task)."
        )
    return BenchTable(
        key="perf" if sw else f"perf_{replay.env}",
        title=(f"1{'' if sw else 'b'}. Framework overhead per step, {replay.env} (gold replay "
               f"of {replay.task} {replay.variation}, zero-latency LLM)"),
        columns=["steps", "median ms", "p95 ms", "max ms", "sim step median ms", "score",
                 "stop", "re-asks"],
        rows=[row],
        notes=notes,
    )
