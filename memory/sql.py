"""Read-only SQL over a memory database, safe to expose to users (``clin memory sql``).

Three layers: the file is opened ``mode=ro``; ``PRAGMA query_only``; and an authorizer that
allows reads only (no ATTACH, no PRAGMA, no writes). ``sqlite3`` itself refuses several
statements in one call. A time limit (a progress handler that interrupts the statement)
stops queries that would never end, such as an unbounded recursive CTE.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from .errors import DatabaseError, QueryError, QueryTimeout

QUERY_TIMEOUT_S = 5.0
_CHECK_EVERY = 10_000  # SQLite VM instructions between two looks at the clock

_ALLOWED = {
    sqlite3.SQLITE_SELECT,
    sqlite3.SQLITE_READ,
    sqlite3.SQLITE_FUNCTION,
    getattr(sqlite3, "SQLITE_RECURSIVE", 33),
}


def _authorizer(action: int, arg1: Any, arg2: Any, dbname: Any, source: Any) -> int:
    return sqlite3.SQLITE_OK if action in _ALLOWED else sqlite3.SQLITE_DENY


def open_readonly(path: str | os.PathLike[str]) -> sqlite3.Connection:
    """Open an existing SQLite file read-only (``mode=ro``); refuse what is not SQLite
    up front, since SQLite reads lazily and ``SELECT 1`` would pass on any file."""
    p = Path(path)
    if not p.exists():
        raise DatabaseError(f"database {p} does not exist")
    if p.is_file():
        with open(p, "rb") as fh:
            head = fh.read(16)
        if head and head != b"SQLite format 3\x00":
            raise DatabaseError(f"{p} is not a SQLite database")
    try:
        return sqlite3.connect(f"{p.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    except sqlite3.Error as exc:
        raise DatabaseError(f"cannot open {p} read-only: {exc}") from None


def run_readonly_query(
    path: str | os.PathLike[str],
    sql: str,
    params: list[Any] | None = None,
    *,
    timeout_s: float | None = QUERY_TIMEOUT_S,
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run one read-only statement; return (column names, rows). Raises QueryError, and
    QueryTimeout when it runs past ``timeout_s`` seconds (None: no limit)."""
    if timeout_s is not None and not timeout_s > 0:
        raise QueryError(f"the time limit must be a positive number of seconds, not {timeout_s}")
    p = Path(path)
    conn = open_readonly(p)
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    try:
        conn.execute("PRAGMA query_only = 1")
        conn.set_authorizer(_authorizer)
        if deadline is not None:
            conn.set_progress_handler(lambda: int(time.monotonic() > deadline), _CHECK_EVERY)
        try:
            cur = conn.execute(sql, params or [])
            rows = cur.fetchall()
        except sqlite3.DatabaseError as exc:
            msg = str(exc)
            if deadline is not None and "interrupted" in msg and time.monotonic() > deadline:
                raise QueryTimeout(
                    f"query stopped after its time limit of {timeout_s:g} s "
                    "(raise it with --timeout SECONDS)"
                ) from None
            if any(w in msg for w in ("not authorized", "authorization denied", "readonly",
                                      "read-only")):
                raise QueryError("only read-only SELECT queries are allowed") from None
            if "file is not a database" in msg:
                raise DatabaseError(f"{p} is not a SQLite database") from None
            raise QueryError(f"SQL error: {msg}") from None
        except sqlite3.ProgrammingError as exc:
            raise QueryError(f"SQL error: {exc}") from None
        cols = [d[0] for d in cur.description] if cur.description else []
        return cols, rows
    finally:
        conn.close()
