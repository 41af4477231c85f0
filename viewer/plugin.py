"""The Datasette hooks of the viewer, registered (as this module) by
:func:`clin.viewer.app.build_datasette` on the ``clin view`` process only: installing CLIN
does not add these pages to other Datasette instances."""

from __future__ import annotations

import sqlite3
from typing import Any

from datasette import hookimpl

from . import routes
from .app import URLS, error_response, page_view, sql_view
from .render import render_error
from .urls import DB_NAME


@hookimpl
def prepare_connection(conn: sqlite3.Connection, database: str) -> None:
    if database == DB_NAME:
        conn.execute("PRAGMA query_only = 1")


@hookimpl
def register_routes() -> list[tuple[str, Any]]:
    out = [(r.regex.pattern, page_view) for r in routes.ROUTES]
    out.append((r"^/sql(?P<page>/.*)$", sql_view))
    # Any other path under the viewer's prefixes is its own 404, not a Datasette database name.
    out.append((r"^/(run|eval|trial|compare|learning|llm|sql)([/?].*)?$", page_view))
    return out


@hookimpl
def menu_links() -> list[dict[str, str]]:
    return [{"href": "/", "label": "CLIN runs and evals"}]


@hookimpl
def handle_exception(request: Any, exception: Exception) -> Any:
    """Every error gets the viewer's error page (JSON for ``.json`` paths). Replaces
    Datasette's default handler in this process (see :func:`build_datasette`), which prints a
    full traceback with locals for every 404 and took over a second to do it; a bug (any
    other exception) still prints its traceback."""
    import traceback

    from datasette.utils.asgi import Base400, Response
    from datasette.views.base import DatasetteError

    async def inner() -> Any:
        if isinstance(exception, (Base400, DatasetteError)):
            status = exception.status
            message = str(getattr(exception, "message", None) or (exception.args or [""])[0])
        else:
            status, message = 500, f"internal error: {exception}"
            traceback.print_exception(exception)
        if request.path.endswith(".json"):
            return Response.json({"ok": False, "error": message, "status": status},
                                 status=status)
        return error_response(status, message)

    return inner


@hookimpl
def asgi_wrapper() -> Any:
    """GET and HEAD only, on every path (Datasette's own POST endpoints included): the viewer
    has nothing to submit, so no request of another method reaches any handler."""

    def wrap(app: Any) -> Any:
        async def reads_only(scope: dict, receive: Any, send: Any) -> None:
            if scope["type"] == "http" and scope["method"] not in ("GET", "HEAD"):
                body = render_error(405, "the viewer is read-only: GET and HEAD only", URLS)
                await send({"type": "http.response.start", "status": 405, "headers": [
                    (b"content-type", b"text/html; charset=utf-8"), (b"allow", b"GET, HEAD")]})
                await send({"type": "http.response.body", "body": body.encode()})
                return
            await app(scope, receive, send)

        return reads_only

    return wrap
