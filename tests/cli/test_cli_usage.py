"""The CLI as a new user types it: usage errors (unknown option or command, bad value, missing
argument) print typer's usage line and the error, exit 2, no traceback, whichever click typer
bundles; ``--version`` and ``--help`` answer; ``memory sql`` writes machine-readable rows."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from clin.cli import main
from clin.memory import Memory, Scope
from tests.support.rel_helpers import one_finished_trial

USAGE_ERRORS = [
    (["--nope"], "No such option"),
    (["run", "--trials", "x"], "Invalid value for '--trials'"),
    (["run", "--task", "grow-plant", "--trials", "x"], "Invalid value for '--trials'"),
    (["frobnicate"], "No such command"),
    (["run"], "Missing option '--task'"),
    (["memory", "sql"], "Missing argument"),
    (["memory", "frobnicate"], "No such command"),
    (["memory", "list", "--variation", "one"], "Invalid value for '--variation'"),
    (["view", "--port", "http"], "Invalid value for '--port'"),
    (["eval", "--trials", "2.5"], "Invalid value for '--trials'"),
]


@pytest.mark.parametrize(("argv", "expect"), USAGE_ERRORS)
def test_usage_errors(argv: list[str], expect: str, capsys) -> None:
    assert main(argv) == 2
    cap = capsys.readouterr()
    assert "Usage: clin" in cap.err and expect in cap.err, cap.err
    assert "Traceback" not in cap.out + cap.err


@pytest.mark.parametrize("argv", [["--nope"], ["run", "--trials", "x"], ["frobnicate"]])
def test_usage_errors_from_the_console_script(argv: list[str]) -> None:
    """The installed `clin` command, as a shell runs it."""
    clin = Path(sys.executable).with_name("clin")
    p = subprocess.run([str(clin), *argv], check=False, capture_output=True, text=True, timeout=60)
    assert p.returncode == 2, p.stderr
    assert "Usage: clin" in p.stderr
    assert "Traceback" not in p.stdout + p.stderr
    assert len(p.stderr.splitlines()) < 10, p.stderr


def test_version(capsys) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"clin {version('clin-agent')}"


def test_help_says_what_clin_is_and_what_to_try(capsys) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "learns causal abstractions" in out
    assert "clin run --task grow-plant" in out
    assert "thin layer" not in out  # the module docstring is for developers


@pytest.fixture
def db(tmp_path: Path) -> Path:
    db = tmp_path / "m.db"
    scope = Scope(env="scienceworld", task="grow-plant", variation="0")
    long = ("carefully watering the germinating apple seed inside the terracotta flower pot "
            "standing beside the greenhouse entrance underneath the southern window every "
            "single morning")
    with Memory(db) as mem:
        one_finished_trial(mem, scope)
        mem.add_learning(scope, long + " MAY BE NECESSARY to growing a healthy flowering apple "
                         "plant before the reproduction stage")
    return db


def test_memory_list_keeps_text_readable(db: Path, capsys) -> None:
    assert main(["memory", "list", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "opening the door MAY BE" in out  # not squeezed into a 10-character column
    assert "…" in out and "--full" in out
    assert main(["memory", "list", "--full", "--db", str(db)]) == 0
    full = " ".join(capsys.readouterr().out.replace("│", " ").split())
    assert "before the reproduction stage" in full


def test_memory_sql_formats(db: Path, capsys) -> None:
    q = "SELECT id, confidence, NULL AS blank FROM learnings ORDER BY id"
    assert main(["memory", "sql", q, "--json", "--db", str(db)]) == 0
    assert json.loads(capsys.readouterr().out) == [
        {"id": 1, "confidence": "may", "blank": None},
        {"id": 2, "confidence": "may", "blank": None}]
    assert main(["memory", "sql", q, "--nl", "--db", str(db)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(x)["id"] for x in lines] == [1, 2]
    assert main(["memory", "sql", q, "--csv", "--db", str(db)]) == 0
    assert list(csv.reader(io.StringIO(capsys.readouterr().out))) == [
        ["id", "confidence", "blank"], ["1", "may", ""], ["2", "may", ""]]
    assert main(["memory", "sql", q, "--db", str(db)]) == 0
    assert "—" in capsys.readouterr().out  # NULL in a table
    assert main(["memory", "sql", q, "--csv", "--json", "--db", str(db)]) == 2
