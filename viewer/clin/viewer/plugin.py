"""The Datasette hooks of the viewer, registered (as this module) by
:func:`clin.viewer.app.build_datasette` on the ``clin view`` process only: installing CLIN
does not add these pages to other Datasette instances."""

from __future__ import annotations

import html
import re
import sqlite3
from typing import Any

from datasette import hookimpl

from clin.localserver import DEFAULT_CSP, local_only
from clin.memory.sql import display_text, harden

from . import routes
from .render import render_error
from .urls import DB_NAME, SCRIPT, SCRIPT_PATH
from .views import URLS, error_response, page_view, sql_view


@hookimpl
def prepare_connection(conn: sqlite3.Connection, database: str) -> None:
    """Every connection of the viewer's Datasette (its SQL editor included): query_only, and
    no function that reaches memory or files (Datasette's own PRAGMA reads stay allowed).
    Datasette's ``_internal`` catalog is its own to write, and no request can query it."""
    if database != "_internal":
        harden(conn, reads_only=False)


async def script_view() -> Any:
    from datasette.utils.asgi import Response

    return Response(SCRIPT, content_type="text/javascript; charset=utf-8",
                    headers={"cache-control": "max-age=3600"})


@hookimpl
def register_routes() -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = [(r.regex.pattern, page_view) for r in routes.ROUTES]
    out.append((r"^/sql(?P<page>/.*)$", sql_view))
    out.append((f"^{re.escape(SCRIPT_PATH)}$", script_view))
    # Any other path under the viewer's prefixes is its own 404, not a Datasette database name.
    out.append((routes.VIEWER_PREFIXES.pattern, page_view))
    return out


@hookimpl
def render_cell(value: Any) -> Any:
    """Datasette's table and query cells: bidi controls neutralised as on the viewer's pages
    (None: Datasette renders the cell as usual)."""
    if isinstance(value, str) and display_text(value) != value:
        return display_text(value)
    return None


@hookimpl
def menu_links() -> list[dict[str, str]]:
    return [{"href": "/", "label": "CLIN runs and evals"}]


def _plain(message: str) -> str:
    """Datasette's HTML error text as one plain line (without the query it appends)."""
    message = re.sub(r"<textarea.*", "", message, flags=re.DOTALL)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", message)).split())


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
            if getattr(exception, "message_is_html", False):  # Datasette's timeout message
                message = _plain(message)
        else:
            status, message = 500, f"internal error: {exception}"
            traceback.print_exception(exception)
        if request.path.endswith(".json"):
            return Response.json({"ok": False, "error": message, "status": status},
                                 status=status)
        # A refused or timed-out query keeps its editor, with the query, to fix and rerun.
        sql = request.args.get("sql") if request.path == f"/{DB_NAME}" else None
        return error_response(status, message, sql=sql)

    return inner


# Datasette's own pages (SQL editor, tables) run inline scripts; the viewer's pages run none.
DATASETTE_CSP = DEFAULT_CSP.replace("script-src 'self'", "script-src 'self' 'unsafe-inline'")


def _csp(path: str) -> str:
    return DEFAULT_CSP if routes.is_viewer_path(path) else DATASETTE_CSP


@hookimpl
def asgi_wrapper() -> Any:
    """Local requests only (:func:`clin.localserver.local_only`: Host and Origin checked,
    security headers on every answer), then GET and HEAD only, on every path (Datasette's own
    POST endpoints included): the viewer has nothing to submit, so no request of another
    method reaches any handler."""

    def wrap(app: Any) -> Any:
        async def reads_only(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http" and scope["method"] not in ("GET", "HEAD"):
                body = render_error(405, "the viewer is read-only: GET and HEAD only", URLS)
                await send({"type": "http.response.start", "status": 405, "headers": [
                    (b"content-type", b"text/html; charset=utf-8"), (b"allow", b"GET, HEAD")]})
                await send({"type": "http.response.body", "body": body.encode()})
                return
            await app(scope, receive, send)

        return local_only(reads_only, csp=_csp)

    return wrap
