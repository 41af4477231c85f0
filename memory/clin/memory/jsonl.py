"""Learnings as JSON Lines: one learning a line, with its scope and support, for backups,
sharing a memory between machines, and review in any text tool.

Import is idempotent: a learning already present in the same scope (same normalized
cause|relation|effect key) is left as it is, so importing a file twice adds nothing. Every
imported row gets an ``imported`` event in ``learning_events``, so its history says where
it came from.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from pydantic import ValidationError

from .errors import DatabaseError, MemoryStoreError
from .learnings import LearningRecord
from .scope import Scope
from .sql import open_readonly
from .store import Memory

__all__ = ["JsonlError", "LearningRecord", "export_jsonl", "import_jsonl",
           "import_records", "iter_records", "read_jsonl"]


class JsonlError(MemoryStoreError):
    """A JSONL line is not a valid learning record (the message names the line)."""


_COLUMNS = (
    "namespace, agent, env, task, variation, cause, effect, relation, confidence, text, "
    "status, support, score_sum, round(score_sum / max(support, 1), 2) AS mean_score, "
    "first_seen, last_seen"
)


def subtree_filter(scope: Scope) -> tuple[str, list[Any]]:
    """Rows inside ``scope``: every field the scope sets must be equal; None means any.
    (Unlike recall, which walks *up* to ancestors, an export walks *down* the subtree.)"""
    clauses: list[str] = []
    params: list[Any] = []
    for field in ("namespace", "agent", "env", "task", "variation"):
        value = getattr(scope, field)
        if value is not None:
            clauses.append(f"{field} = ?")
            params.append(value)
    return " AND ".join(clauses) or "1", params


def iter_records(
    conn: sqlite3.Connection, scope: Scope | None = None, *, include_retired: bool = False
) -> Iterator[LearningRecord]:
    where, params = subtree_filter(scope) if scope is not None else ("1", [])
    if not include_retired:
        where += " AND status = 'active'"
    cur = conn.execute(f"SELECT {_COLUMNS} FROM learnings WHERE {where} ORDER BY id", params)
    cols = [d[0] for d in cur.description]
    for values in cur:
        yield LearningRecord(**dict(zip(cols, values)))


def export_jsonl(
    mem_or_path: Memory | str | os.PathLike[str],
    fh: IO[str],
    scope: Scope | None = None,
    *,
    include_retired: bool = False,
) -> int:
    """Write learnings (active only unless ``include_retired``) as JSON lines; return how
    many. A path is opened read-only, so exporting never changes the file."""
    if isinstance(mem_or_path, Memory):
        return _write(iter_records(mem_or_path.db.conn, scope, include_retired=include_retired), fh)
    path = Path(mem_or_path)
    conn = open_readonly(path)
    try:
        return _write(iter_records(conn, scope, include_retired=include_retired), fh)
    except sqlite3.DatabaseError as exc:
        raise DatabaseError(f"cannot export from {path}: {exc}") from None
    finally:
        conn.close()


def _write(records: Iterable[LearningRecord], fh: IO[str]) -> int:
    n = 0
    for rec in records:
        fh.write(json.dumps(rec.model_dump(), ensure_ascii=False) + "\n")
        n += 1
    return n


def read_jsonl(fh: IO[str]) -> Iterator[LearningRecord]:
    """Parse lines into records; a bad line raises with its line number (nothing is
    skipped silently). Blank lines are allowed."""
    for lineno, line in enumerate(fh, 1):
        if not line.strip():
            continue
        try:
            yield LearningRecord.model_validate_json(line)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "line"
            raise JsonlError(f"line {lineno}: {where}: {first['msg']}") from None


def import_jsonl(mem: Memory, fh: IO[str]) -> int:
    """Import learnings from JSON lines; return how many were new. Idempotent. The whole
    file is validated batch by batch before each batch is written."""
    return import_records(mem, read_jsonl(fh))


def import_records(mem: Memory, records: Iterable[LearningRecord | dict[str, Any]]) -> int:
    """Insert records in batches (one transaction each); existing (scope, key) pairs are
    left untouched. Returns the number of rows added."""
    return mem.import_records(records)
