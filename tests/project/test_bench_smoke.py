"""Keeps the issue-6 benchmark from rotting: a 5-step gold replay through the real agent
loop, scored into the two tables it feeds. Asserts shape and sanity, never timings."""

from __future__ import annotations

import pytest

from bench.overhead import overhead_table
from bench.replay import prepare_gold, run_replay
from bench.tokens import EstimateCounter, prompts_table


def test_prepare_gold_drops_numbers_and_breaks_repeats() -> None:
    g = prepare_gold(["go to kitchen", "0", *["wait1"] * 6])
    assert g.skipped_numbers == 1
    assert "0" not in g.actions
    assert g.fillers == 1
    assert g.actions.count("wait1") == 6


@pytest.mark.scienceworld
def test_replay_five_steps_feeds_both_tables(sw) -> None:
    replay = run_replay(sw, max_steps=5)
    result = replay.result
    assert result.steps == 5
    assert len(result.overhead_ms) == 5
    # each step's overhead includes at least its SQLite write, so a timer that stopped
    # measuring (or an overhead clamped to zero) shows up as 0
    assert all(ms > 0 for ms in result.overhead_ms)
    assert len(replay.env_ms) == 5 and all(ms > 0 for ms in replay.env_ms)
    assert result.score > 0  # the first gold moves reach the kitchen
    perf = overhead_table(replay)
    assert perf.rows[0][0] == "5"
    prompts = prompts_table(replay, EstimateCounter())
    ours, ref = prompts.rows
    assert int(ours[1]) == int(ref[1]) == 5
