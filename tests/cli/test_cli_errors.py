"""Every user error of the CLI: one line on stderr, exit code 2, no traceback, and the
database untouched (prior data intact)."""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from clin.cli import main
from clin.memory import Memory, Scope
from tests.support.rel_helpers import borrow_env, one_finished_trial, rows

TASK = "find-living-thing"


def _digest(path: Path) -> str | None:
    """Bytes of the database and its WAL: what 'untouched' means."""
    if not path.exists():
        return None
    h = hashlib.sha256(path.read_bytes())
    wal = path.with_name(path.name + "-wal")
    if wal.exists():
        h.update(wal.read_bytes())
    return h.hexdigest()


@pytest.fixture
def filled_db(tmp_path: Path) -> Path:
    """A database holding one finished run, one completed trial and one learning."""
    db = tmp_path / "prior.db"
    scope = Scope(env="scienceworld", task=TASK, variation="0")
    with Memory(db) as mem:
        one_finished_trial(mem, scope)
        mem.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return db


def _prior_intact(db: Path) -> None:
    assert rows(db, "SELECT status FROM runs") == [("finished",)]
    assert rows(db, "SELECT idx, status, score FROM trials") == [(1, "completed", 25.0)]
    assert rows(db, "SELECT text FROM learnings") == [
        ("opening the door MAY BE NECESSARY to going outside",)]


def _user_error(capsys: pytest.CaptureFixture[str], argv: list[str], expect: str) -> str:
    code = main(argv)
    captured = capsys.readouterr()
    lines = [ln for ln in captured.err.splitlines() if ln.strip()]
    assert code == 2, (code, captured.err, captured.out)
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("error: ") and expect in lines[0], lines[0]
    assert "Traceback" not in captured.out + captured.err
    return lines[0]


def _run(db: Path, *extra: str) -> list[str]:
    return ["run", "--task", TASK, "--trials", "1", "--max-steps", "1", "--model",
            "openai:fake", "--base-url", "http://127.0.0.1:9/v1", "--db", str(db), *extra]


# ----------------------------------------------------------------------------- clin run
@pytest.mark.scienceworld
def test_unknown_task_suggests_close_names(sw, filled_db: Path, monkeypatch, capsys) -> None:
    borrow_env(monkeypatch, sw)
    before = _digest(filled_db)
    argv = _run(filled_db)
    argv[2] = "find-livng-thing"
    line = _user_error(capsys, argv, "unknown task 'find-livng-thing'")
    assert "Did you mean: find-living-thing" in line
    assert _digest(filled_db) == before
    _prior_intact(filled_db)


@pytest.mark.scienceworld
def test_variation_out_of_range(sw, filled_db: Path, monkeypatch, capsys) -> None:
    borrow_env(monkeypatch, sw)
    before = _digest(filled_db)
    _user_error(capsys, _run(filled_db, "--variation", "9999"), "out of range")
    _user_error(capsys, _run(filled_db, "--variation", "-1"), "out of range")
    assert _digest(filled_db) == before
    _prior_intact(filled_db)


@pytest.mark.parametrize(("spec", "expect"), [
    ("potato", "unknown model spec 'potato'"),
    ("openai:", "needs a model name"),
    ("langchain:x", "passed from Python"),
    ("local:/nonexistent/model.gguf", "does not exist"),
])
def test_bad_model_spec(spec: str, expect: str, tmp_path: Path, filled_db: Path,
                        monkeypatch, capsys) -> None:
    fresh = tmp_path / "fresh.db"
    argv = _run(fresh)
    argv[argv.index("--model") + 1] = spec
    if spec.startswith("local:"):
        from clin.trials import session

        monkeypatch.setattr(session, "make", _NoJVM)
    _user_error(capsys, argv, expect)
    if not spec.startswith("local:"):  # spec syntax is checked before anything is created
        assert not fresh.exists()
    before = _digest(filled_db)
    argv[argv.index("--db") + 1] = str(filled_db)
    if not spec.startswith("local:"):
        _user_error(capsys, argv, expect)
        assert _digest(filled_db) == before


class _NoJVM:
    """A stand-in env whose task check passes, for errors raised after it."""

    name = "scienceworld"

    def __init__(self, *a: object, **kw: object) -> None:
        pass

    def close(self) -> None:
        pass

    def check(self, task: str, variation: int) -> None:
        pass


@pytest.mark.parametrize(("option", "value", "expect"), [
    ("--trials", "0", "--trials must be at least 1"),
    ("--trials", "-3", "--trials must be at least 1"),
    ("--max-steps", "0", "--max-steps must be at least 1"),
])
def test_bad_numbers(option: str, value: str, expect: str, tmp_path: Path, filled_db: Path,
                     capsys) -> None:
    fresh = tmp_path / "fresh.db"
    argv = _run(fresh)
    argv[argv.index(option) + 1] = value
    _user_error(capsys, argv, expect)
    assert not fresh.exists()
    before = _digest(filled_db)
    argv[argv.index("--db") + 1] = str(filled_db)
    _user_error(capsys, argv, expect)
    assert _digest(filled_db) == before


def test_missing_java(filled_db: Path, monkeypatch, capsys) -> None:
    from clin.envs import jvm  # where every JVM env looks for java

    real_which = jvm.shutil.which
    monkeypatch.setattr(jvm.shutil, "which",
                        lambda name, *a, **k: None if name == "java" else real_which(name))
    before = _digest(filled_db)
    line = _user_error(capsys, _run(filled_db), "needs Java")
    assert "not found on PATH" in line
    _user_error(capsys, ["tasks"], "needs Java")
    assert _digest(filled_db) == before
    _prior_intact(filled_db)


def test_missing_java_on_path(tmp_path: Path, filled_db: Path) -> None:
    """The same through the installed entry point, with a PATH that holds no java."""
    import sys

    before = _digest(filled_db)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "python").symlink_to(sys.executable)
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; from clin.cli import main; sys.exit(main())",
         *_run(filled_db)],
        check=False, capture_output=True, text=True,
        env={"PATH": str(bindir), "NO_COLOR": "1"},
        timeout=120,
    )
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and "needs Java" in lines[0]
    assert _digest(filled_db) == before


# ----------------------------------------------------------------------------- databases
def test_non_sqlite_file_as_db(tmp_path: Path, capsys) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("these are my precious notes\n")
    before = notes.read_bytes()
    _user_error(capsys, _run(notes), "not a SQLite database")
    _user_error(capsys, ["memory", "list", "--db", str(notes)], "not a SQLite database")
    _user_error(capsys, ["memory", "sql", "SELECT 1", "--db", str(notes)], "not a SQLite")
    assert notes.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_directory_as_db(tmp_path: Path, capsys) -> None:
    _user_error(capsys, _run(tmp_path), "is a directory")


def test_missing_db_for_memory_commands(tmp_path: Path, capsys) -> None:
    missing = tmp_path / "none.db"
    _user_error(capsys, ["memory", "list", "--db", str(missing)], "does not exist")
    _user_error(capsys, ["memory", "sql", "SELECT 1", "--db", str(missing)], "does not exist")
    assert not missing.exists()


@contextlib.contextmanager
def _read_only(path: Path) -> Iterator[None]:
    """Read-only even for root: the immutable flag where chattr works, else mode 0444."""
    immutable = shutil.which("chattr") is not None and subprocess.run(
        ["chattr", "+i", str(path)], check=False, capture_output=True).returncode == 0
    if not immutable:
        path.chmod(0o444)
    try:
        yield
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(path)], check=True)
        path.chmod(0o644)


def test_read_only_db(filled_db: Path, capsys) -> None:
    import os

    before = _digest(filled_db)
    with _read_only(filled_db):
        if os.access(filled_db, os.W_OK):
            pytest.fail("could not make the database read-only on this machine")
        _user_error(capsys, _run(filled_db), "read-only")
        assert main(["memory", "list", "--db", str(filled_db)]) == 0  # reading still works
        assert "opening" in capsys.readouterr().out
    assert _digest(filled_db) == before
    _prior_intact(filled_db)


# ----------------------------------------------------------------------------- memory sql
def test_bad_sql(filled_db: Path, capsys) -> None:
    before = _digest(filled_db)
    _user_error(capsys, ["memory", "sql", "SELEC * FROM runs", "--db", str(filled_db)],
                "SQL error")
    _user_error(capsys, ["memory", "sql", "SELECT nope FROM runs", "--db", str(filled_db)],
                "no such column")
    assert _digest(filled_db) == before


WRITES = [
    "DELETE FROM runs",
    "UPDATE trials SET score = 100",
    "INSERT INTO runs (started_at, status) VALUES ('x', 'y')",
    "DROP TABLE learnings",
    "CREATE TABLE evil (x)",
    "CREATE TEMP TABLE evil (x)",
    "ALTER TABLE runs ADD COLUMN evil TEXT",
    "WITH x AS (SELECT 1) DELETE FROM runs",
    "REPLACE INTO runs (id, started_at, status) VALUES (1, 'x', 'y')",
    "ATTACH DATABASE '{tmp}/attached.db' AS other",
    "ATTACH ':memory:' AS other",
    "DETACH main",
    "PRAGMA user_version = 7",
    "PRAGMA journal_mode = DELETE",
    "PRAGMA query_only = 0",
    "PRAGMA writable_schema = ON",
    "VACUUM",
    "VACUUM INTO '{tmp}/copy.db'",
    "BEGIN IMMEDIATE",
    "SELECT 1; DELETE FROM runs",
    "SELECT 1; ATTACH '{tmp}/attached.db' AS other",
    "SELECT load_extension('/tmp/evil.so')",
]


@pytest.mark.parametrize("sql", WRITES)
def test_memory_sql_refuses_writes(sql: str, filled_db: Path, tmp_path: Path, capsys) -> None:
    def others() -> list[str]:  # files besides the database and SQLite's own -wal/-shm
        return sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("prior.db"))

    before, files = _digest(filled_db), others()
    _user_error(capsys, ["memory", "sql", sql.format(tmp=tmp_path), "--db", str(filled_db)],
                "")
    assert _digest(filled_db) == before
    assert others() == files  # nothing attached or copied
    _prior_intact(filled_db)


def test_memory_sql_reads(filled_db: Path, capsys) -> None:
    assert main(["memory", "sql", "SELECT task, score FROM v_trial_scores",
                 "--db", str(filled_db)]) == 0
    assert TASK in capsys.readouterr().out
