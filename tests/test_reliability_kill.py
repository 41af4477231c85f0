"""Killed runs: SIGKILL `clin run` at random moments and resume with --resume (the fast
variant of stress/kill_resume.py; the script runs 50 kills)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stress.checks import check_db, check_finished_runs
from stress.kill_resume import stress

pytestmark = pytest.mark.scienceworld


def test_sigkilled_runs_resume_cleanly(tmp_path: Path, allow_model_requests: None) -> None:
    db = tmp_path / "clin.db"
    figures = stress(kills=3, db=db, trials=2, max_steps=3, max_delay=6.0, seed=1,
                     log_dir=tmp_path)
    assert figures["kills"] == 3
    assert figures["clean_resumes"] == figures["resumes"] == 3
    assert figures["checks"] == figures["invocations"]
    assert sum(figures["killed_in"].values()) == 3
    assert figures["runs_finished"] >= 1
    assert check_finished_runs(db, 2) == figures["runs_finished"]
    final = check_db(db)
    assert final["completed_trials"] == 2 * figures["runs_finished"]
    assert figures["orphans_killed"] == 0  # the JVM dies with its parent
