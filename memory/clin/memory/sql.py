"""Read-only SQL over a memory database, safe to expose to users (``clin memory sql``, the
viewer and its Datasette SQL editor).

Three layers: the file is opened ``mode=ro``; ``PRAGMA query_only``; and an authorizer that
allows reads only (no ATTACH, no PRAGMA, no writes) and no function that reaches the process's
memory or the file system (:data:`DENIED_FUNCTIONS`). ``sqlite3`` itself refuses several
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


# SQL functions no reader needs that reach past the database: fts3_tokenizer() returns and
# sets native pointers (its two-argument form crashed a server), load_extension() loads a
# shared library, and the CLI shell's file functions (readfile, writefile, edit, fsdir) are
# refused in case a build of SQLite links them in.
DENIED_FUNCTIONS = frozenset({"fts3_tokenizer", "load_extension", "readfile", "writefile",
                              "edit", "fsdir", "zipfile", "sqlar_compress",
                              "sqlar_uncompress"})
# The largest string or blob a read-only query may build (zeroblob(), printf('%.*c', ...)
# would otherwise take 1 GB of memory each): far above any stored text.
MAX_LENGTH = 64 * 1024 * 1024


def _authorizer(action: int, arg1: Any, arg2: Any, dbname: Any, source: Any) -> int:
    if action == sqlite3.SQLITE_FUNCTION and str(arg2).lower() in DENIED_FUNCTIONS:
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK if action in _ALLOWED else sqlite3.SQLITE_DENY


def deny_dangerous_functions(action: int, arg1: Any, arg2: Any, dbname: Any,
                             source: Any) -> int:
    """An authorizer that allows everything but :data:`DENIED_FUNCTIONS`: for connections
    that must run their host's own statements (Datasette reads schema with PRAGMA) and are
    made read-only by ``mode=ro`` and ``PRAGMA query_only`` instead."""
    if action == sqlite3.SQLITE_FUNCTION and str(arg2).lower() in DENIED_FUNCTIONS:
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


def harden(conn: sqlite3.Connection, *, reads_only: bool = True) -> sqlite3.Connection:
    """Make ``conn`` a safe read-only connection: ``PRAGMA query_only``, a cap on string
    length, and an authorizer (reads only, or with ``reads_only=False`` anything but the
    denied functions)."""
    conn.execute("PRAGMA query_only = 1")
    if hasattr(conn, "setlimit"):  # Python 3.11+
        conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_LENGTH)  # pyright: ignore  # 3.11+
    conn.set_authorizer(_authorizer if reads_only else deny_dangerous_functions)
    return conn


# Characters that reorder the text around them (LRE, RLE, PDF, LRO, RLO, LRI, RLI, FSI, PDI,
# and the marks LRM, RLM, ALM): "\u202eexe.txt" displays as "txt.exe".
_BIDI = {c: f"<U+{c:04X}>" for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A),
                                    0x200E, 0x200F, 0x061C)}


def display_text(text: str) -> str:
    """``text`` for display: each bidi control character shown as ``<U+202E>`` instead of
    reordering what follows it. Stored text is never changed; only what is shown."""
    return text.translate(_BIDI)


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
        harden(conn)
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
                raise QueryError("only read-only SELECT queries are allowed (no writes, "
                                 "PRAGMA, ATTACH, or functions such as load_extension and "
                                 "fts3_tokenizer)") from None
            if "file is not a database" in msg:
                raise DatabaseError(f"{p} is not a SQLite database") from None
            raise QueryError(f"SQL error: {msg}") from None
        cols = [d[0] for d in cur.description] if cur.description else []
        return cols, rows
    finally:
        conn.close()
