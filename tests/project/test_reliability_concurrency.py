"""Concurrent writers: 4 processes write runs/trials/steps/learnings into one fresh database
at once (the small variant of stress/concurrent_writers.py)."""

from __future__ import annotations

from pathlib import Path

from stress.checks import check_db
from stress.concurrent_writers import stress


def test_four_writers_no_lock_errors_all_rows(tmp_path: Path) -> None:
    db = tmp_path / "clin.db"
    fig = stress(db=db, writers=4, runs=2, trials=3, steps=10)
    assert fig["exit_codes"] == [0, 0, 0, 0]
    assert fig["lock_errors"] == 0 and fig["other_errors"] == 0, fig["errors"]
    assert fig["rows"] == fig["expected_rows"]
    assert fig["integrity"] == "ok"
    # the shared scope's learnings were merged by every trial of every writer, none lost
    assert fig["shared_support"] == [4 * 2 * 3] * 3
    check_db(db)
