"""One open SQLite file: connection settings, schema migrations, write transactions.

Safety contract:
- WAL journal, foreign keys on, a busy timeout, and every write in a short ``BEGIN IMMEDIATE``
  transaction, so concurrent writers queue instead of failing and a crash loses at most the
  write in flight.
- Schemas are lists of migrations applied once each, recorded in ``_clin_migrations``.
  ``memory`` owns the core schema (``memory.migrations``); other components (the eval tables
  of ``clin.trials``) pass their own :class:`Schema`, applied by the same runner.
- A file written by a newer program (a ``user_version`` above ours, or a migration name we
  do not know) is refused before anything is written to it.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlite_utils

from .errors import DatabaseError, NewerSchemaError

try:  # POSIX advisory lock so two processes never migrate the same file at once
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

BUSY_TIMEOUT_S = 60.0
SQLITE_MAGIC = b"SQLite format 3\x00"

Migration = Callable[[sqlite_utils.Database], None]


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class Schema:
    """An owner's ordered migrations. Core names are recorded as the function name; other
    owners' as ``owner.function`` (except ``legacy`` names, recorded before owners existed),
    so a file can say which component wrote which part of its schema."""

    owner: str
    migrations: tuple[Migration, ...]
    version: int = 0  # the core schema stores its version in PRAGMA user_version
    legacy: frozenset[str] = field(default_factory=frozenset)

    def name(self, fn: Migration) -> str:
        if self.owner == "memory" or fn.__name__ in self.legacy:
            return fn.__name__
        return f"{self.owner}.{fn.__name__}"

    @property
    def names(self) -> list[str]:
        return [self.name(fn) for fn in self.migrations]


def insert(conn: sqlite3.Connection, table: str, row: dict[str, Any]) -> int:
    """INSERT one row (column names from the dict keys); return its rowid."""
    cols = ", ".join(f"[{c}]" for c in row)
    marks = ", ".join("?" for _ in row)
    return inserted_id(conn.execute(f"INSERT INTO [{table}] ({cols}) VALUES ({marks})",
                                    list(row.values())))


def inserted_id(cur: sqlite3.Cursor) -> int:
    """The rowid of the row an INSERT through ``cur`` just wrote."""
    assert cur.lastrowid is not None  # an INSERT always sets it
    return cur.lastrowid


def rows(conn: sqlite3.Connection, sql: str, params: Sequence[Any] = ()) -> Iterator[dict[str, Any]]:
    """The rows of a query as dicts."""
    cur = conn.execute(sql, list(params))
    cols = [d[0] for d in cur.description]
    for values in cur:
        yield dict(zip(cols, values))


class Database:
    """An open memory file (created if missing) with every schema in ``schemas`` applied."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        schemas: Sequence[Schema],
        *,
        create: bool = True,
        moved: frozenset[str] = frozenset(),
    ) -> None:
        self.path = Path(path)
        self.schemas = tuple(schemas)
        self._moved = moved
        if not create and not self.path.exists():
            raise DatabaseError(f"database {self.path} does not exist")
        check_file(self.path)
        try:
            conn = sqlite3.connect(
                str(self.path), timeout=BUSY_TIMEOUT_S, isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.DatabaseError as exc:
            raise DatabaseError(explain(self.path, exc)) from None
        self.conn = conn
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            self.db = sqlite_utils.Database(conn)
            self._refuse_newer()  # before the first write: a newer file stays untouched
            # Switching a new file to WAL and creating the schema take locks that two
            # processes opening the same new file at once can deadlock on (SQLite then
            # answers "locked" without waiting), so setup is serialized across processes.
            with setup_lock(self.path):
                conn.execute("PRAGMA journal_mode = WAL")
                self._migrate()
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise DatabaseError(explain(self.path, exc)) from None
        except BaseException:
            conn.close()
            raise

    # ------------------------------------------------------------------ schema
    def _recorded(self) -> set[str]:
        if not self.db["_clin_migrations"].exists():
            return set()
        return {r[0] for r in self.conn.execute("SELECT name FROM _clin_migrations")}

    def _refuse_newer(self) -> None:
        """Refuse a file whose schema is newer than this program, naming both versions."""
        core = self.schemas[0]
        (file_version,) = self.conn.execute("PRAGMA user_version").fetchone()
        known = {n for s in self.schemas for n in s.names} | self._moved
        owners = {s.owner for s in self.schemas}
        unknown = sorted(
            n for n in self._recorded() - known
            if "." not in n or n.split(".", 1)[0] in owners  # other owners' names are theirs
        )
        if file_version > core.version or unknown:
            newest = unknown[-1] if unknown else f"version {file_version}"
            raise NewerSchemaError(
                f"database {self.path} was written by a newer CLIN (schema {newest}, "
                f"user_version {file_version}); this program knows schema version "
                f"{core.version} ({core.names[-1]}): upgrade clin-agent to open it "
                "(the file was left untouched)"
            )

    def _migrate(self) -> None:
        done = self._recorded()
        if all(set(s.names) <= done for s in self.schemas):
            self._set_version()
            return
        self._refuse_newer()  # again under the lock: another process may have upgraded it
        apply(self.db, self.schemas)
        self._set_version()

    def _set_version(self) -> None:
        version = self.schemas[0].version
        if self.conn.execute("PRAGMA user_version").fetchone()[0] < version:
            self.conn.execute(f"PRAGMA user_version = {int(version)}")

    # ------------------------------------------------------------------ writes
    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction taken up front (BEGIN IMMEDIATE), so it never fails half-way
        on a lock upgrade; waits up to the busy timeout for other writers."""
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise DatabaseError(explain(self.path, exc)) from None
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        else:
            self.conn.execute("COMMIT")

    def rows(self, sql: str, params: Sequence[Any] = ()) -> Iterator[dict[str, Any]]:
        return rows(self.conn, sql, params)

    def close(self) -> None:
        self.conn.close()


def check_file(path: Path) -> None:
    """Refuse up front what SQLite would fail on later or, worse, overwrite."""
    if path.exists():
        if path.is_dir():
            raise DatabaseError(f"{path} is a directory, not a database file")
        if not os.access(path, os.W_OK):
            raise DatabaseError(
                f"database {path} is read-only: make it writable or pass another --db"
            )
        with open(path, "rb") as fh:
            head = fh.read(16)
        if head and head != SQLITE_MAGIC:
            raise DatabaseError(
                f"{path} is not a SQLite database: pass another --db path "
                "(the file was left untouched)"
            )
    elif not os.access(path.parent if str(path.parent) else ".", os.W_OK):
        raise DatabaseError(f"cannot create database {path}: directory is not writable")


@contextmanager
def setup_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on ``<db>.lock`` held while opening is set up."""
    try:
        lock = open(str(path) + ".lock", "a")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise DatabaseError(
            f"cannot write beside {path} ({exc.strerror}): SQLite needs its directory "
            "writable for the WAL journal; pass another --db"
        ) from None
    with lock:
        if fcntl is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(lock, fcntl.LOCK_UN)


# ---------------------------------------------------------------------- migration runner
def apply(db: sqlite_utils.Database, schemas: Sequence[Schema]) -> list[str]:
    """Apply pending migrations of ``schemas`` in order; return the names applied."""
    table = db.table("_clin_migrations")
    if not table.exists():
        table.create({"name": str, "applied_at": str}, pk="name")
    done = {row["name"] for row in table.rows}
    applied = []
    for schema in schemas:
        for fn in schema.migrations:
            name = schema.name(fn)
            if name in done:
                continue
            _discard_leftovers(db, schemas, fn)
            with db.conn:
                fn(db)
                db.execute(
                    "INSERT INTO _clin_migrations (name, applied_at) VALUES (?, datetime('now'))",
                    [name],
                )
            applied.append(name)
    return applied


def _objects(db: sqlite_utils.Database) -> set[tuple[str, str]]:
    return {(t, n) for t, n in db.execute("SELECT type, name FROM sqlite_master").fetchall()}


def _discard_leftovers(
    db: sqlite_utils.Database, schemas: Sequence[Schema], fn: Migration
) -> None:
    """Drop what an earlier, killed attempt at ``fn`` left behind.

    sqlite-utils commits each DDL statement on its own, so a SIGKILL half-way through a
    migration leaves some of its tables while the migration stays unrecorded, and re-running
    it failed with 'table ... already exists' on every later start. Nothing can have used
    those objects (a Memory is only handed out once every migration is recorded), so they
    are dropped and the migration runs again. The objects ``fn`` creates are found by
    applying the migrations up to it to an in-memory database.
    """
    scratch = sqlite_utils.Database(memory=True)
    created: set[tuple[str, str]] = set()
    for step in (m for s in schemas for m in s.migrations):
        before = _objects(scratch)
        step(scratch)
        if step is fn:
            created = _objects(scratch) - before
            break
    leftovers = created & _objects(db)
    order = {"view": 0, "trigger": 1, "index": 2, "table": 3}
    for kind, name in sorted(leftovers, key=lambda o: (order.get(o[0], 9), len(o[1]))):
        if kind in order and not name.startswith("sqlite_"):
            db.execute(f"DROP {kind.upper()} IF EXISTS [{name}]")


def explain(path: Path, exc: BaseException) -> str:
    msg = str(exc)
    if "file is not a database" in msg or "malformed" in msg:
        return f"{path} is not a usable SQLite database ({msg}): pass another --db path"
    if "readonly" in msg or "read-only" in msg:
        return f"database {path} is read-only: make it writable or pass another --db"
    if "locked" in msg:
        return f"database {path} stayed locked for {BUSY_TIMEOUT_S:.0f}s by another process"
    return f"database {path}: {msg}"
