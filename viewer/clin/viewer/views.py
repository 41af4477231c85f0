"""The served viewer's request handlers: a page of :mod:`clin.viewer.pages` (or the SQL behind
it) built on one of Datasette's read connections and rendered to HTML, or the error page that
answers instead. The Datasette hooks (:mod:`clin.viewer.plugin`) route to these; the static
export uses the same builders and templates without them."""

from __future__ import annotations

import sqlite3
from typing import Any
from urllib.parse import parse_qs

from datasette.app import Datasette
from datasette.utils.asgi import Response

from . import render, routes
from .pages import Page, PageError
from .urls import DB_NAME, ServerUrls

URLS = ServerUrls()


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
