"""The served viewer: a Datasette instance with the CLIN pages registered as plugin routes.

Datasette brings table browsing, the SQL editor, canned queries and JSON for free; the plugin
adds the pages of :mod:`clin.viewer.pages` at ``/``, ``/learnings``, ``/run/N``,
``/trial/N``, ... and ``/sql/<page>`` for the queries behind each. Read-only, in three layers:
the database opens ``mode=ro`` connections only (:class:`ReadOnlyDatabase` has no write
connection), each gets ``PRAGMA query_only`` and an authorizer denying the functions that
reach memory or files (:func:`clin.memory.sql.harden`), and every path answers GET and HEAD
only (an ASGI wrapper refuses other methods before any handler runs). Only requests for
localhost or 127.0.0.1 are answered (:func:`clin.localserver.local_only`). The database is always named ``clin`` inside
Datasette, whatever its file name, so the shipped metadata (canned queries, facets) applies
to any file.
"""

from __future__ import annotations

import json
import sqlite3
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from datasette.app import Datasette
from datasette.database import Database
from datasette.utils.asgi import Response

from . import render, routes
from .pages import Page, PageError
from .urls import DB_NAME, ServerUrls

URLS = ServerUrls()


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


def _metadata() -> dict[str, Any]:
    text = resources.files("clin.memory").joinpath("datasette-metadata.json").read_text()
    return json.loads(text)


def error_response(status: int, message: str, sql: str | None = None) -> Response:
    return Response.html(render.render_error(status, message, URLS, sql=sql), status=status)


async def _build(datasette: Datasette, request: Any, path: str) -> Page | Response:
    """The page at ``path`` built on a read connection, or the error page answering it."""
    args = parse_qs(request.query_string, keep_blank_values=True)
    try:
        build = routes.resolve(path, args)
        return await datasette.get_database(DB_NAME).execute_fn(build)
    except PageError as exc:
        return error_response(exc.status, str(exc))
    except sqlite3.Error as exc:
        return error_response(500, f"database error: {exc}")


async def page_view(datasette: Datasette, request: Any) -> Response:
    page = await _build(datasette, request, request.path)
    if isinstance(page, Response):
        return page
    path = request.path + (f"?{request.query_string}" if request.query_string else "")
    return Response.html(render.render_page(page, path, URLS))


async def sql_view(datasette: Datasette, request: Any) -> Response:
    path = request.url_vars["page"]
    page = await _build(datasette, request, path)
    if isinstance(page, Response):
        return page
    if request.query_string:
        path += "?" + request.query_string
    return Response.html(render.render_sql(page, path, URLS))


class ReadOnlyDatabase(Database):
    """A Datasette database that can only ever open read-only connections: ``mode=ro`` on a
    properly escaped file URI (Datasette splices the raw path into its URI, which breaks on a
    ``?``, ``#`` or ``%`` in the file name), and no write connection at all."""

    def connect(self, write: bool = False) -> sqlite3.Connection:
        if write:
            raise sqlite3.OperationalError("clin view is read-only: no write connection")
        assert self.path is not None  # made for a file, never in-memory
        conn = sqlite3.connect(f"{Path(self.path).as_uri()}?mode=ro", uri=True,
                               check_same_thread=False)
        self._all_file_connections.append(conn)
        return conn


def build_datasette(db: Path) -> Datasette:
    """A Datasette over ``db`` (read-only) with the viewer's pages."""
    from datasette.plugins import pm

    from . import plugin

    path = check_database(db)
    if pm.get_plugin("clin_viewer") is None:
        pm.register(plugin, name="clin_viewer")
        if pm.get_plugin("datasette.handle_exception") is not None:
            pm.unregister(name="datasette.handle_exception")
    # Suggested facets cost seconds on a 100,000-step table (a GROUP BY per column per page).
    ds = Datasette(metadata=_metadata(), settings={"suggest_facets": False})
    if "_memory" in ds.databases:  # an in-memory database anyone could run SQL on: not ours
        ds.remove_database("_memory")
    ds.add_database(ReadOnlyDatabase(ds, path=str(path), is_mutable=True), name=DB_NAME)
    return ds


def serve(db: Path, *, port: int = 0, open_browser: bool = False,
          announce: Any = print) -> None:
    """Serve on 127.0.0.1 (port 0: any free port) until interrupted; ``announce`` gets the
    address once the socket is listening."""
    import socket
    import webbrowser

    import uvicorn

    ds = build_datasette(db)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError as exc:
        sock.close()
        raise ViewerError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror}") from None
    sock.listen(128)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
    announce(url)
    if open_browser:
        webbrowser.open(url)
    # Ctrl-C / SIGTERM: open connections get 2 s to finish, then the server stops anyway
    config = uvicorn.Config(ds.app(), log_level="warning", lifespan="on",
                            timeout_graceful_shutdown=2)
    uvicorn.Server(config).run(sockets=[sock])
