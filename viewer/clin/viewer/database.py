"""The file the viewer reads, checked before anything opens it: the served viewer and the
static export both start here, and neither needs Datasette for it."""

from __future__ import annotations

import sqlite3
from pathlib import Path


class ViewerError(Exception):
    """The viewer cannot open what it was given (a user error: one line, exit code 2)."""


def check_database(path: Path) -> Path:
    """The resolved path of an existing SQLite file made by CLIN, or :class:`ViewerError`."""
    if not path.exists():
        raise ViewerError(f"database {path} does not exist: run `clin run` first or pass --db")
    if not path.is_file():
        raise ViewerError(f"{path} is not a file")
    with open(path, "rb") as fh:
        if fh.read(16) != b"SQLite format 3\x00":
            raise ViewerError(f"{path} is not a SQLite database")
    path = path.resolve()
    try:
        conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
        try:
            names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise ViewerError(f"cannot read {path}: {exc}") from None
    if not {"runs", "trials", "steps", "learnings"} <= names:
        raise ViewerError(f"{path} is not a CLIN database (no runs/trials/steps tables)")
    return path
