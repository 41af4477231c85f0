"""The served viewer: a Datasette instance with the CLIN pages registered as plugin routes.

Datasette brings table browsing, the SQL editor, canned queries and JSON for free; the plugin
adds the pages of :mod:`clin.viewer.pages` (answered by :mod:`clin.viewer.views`) at ``/``, ``/learnings``, ``/run/N``,
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

from datasette.app import Datasette
from datasette.database import Database

from .database import ViewerError, check_database
from .urls import DB_NAME


def _metadata() -> dict[str, Any]:
    text = resources.files("clin.memory").joinpath("datasette-metadata.json").read_text()
    return json.loads(text)


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
