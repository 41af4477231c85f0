"""Pages to HTML: one Jinja2 environment over ``templates/``, autoescaped, shared by the server
and the static export (which differ only in their :mod:`urls`)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from clin.memory.sql import display_text

from .pages import Page
from .urls import DB_NAME, ServerUrls, file_name

TEMPLATES = Path(__file__).parent / "templates"


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_shown,
    )
    env.filters["num"] = _num
    env.filters["signed"] = _signed
    return env


NULL = "\u2014"  # how every page shows an SQL NULL


def _shown(v: Any) -> Any:
    """Every ``{{ value }}`` of every template: NULL as "—", and bidi controls neutralised so
    stored text cannot display reversed ("\u202eexe.txt" as "txt.exe"). Markup (the
    charts, built here) passes as it is."""
    if v is None:
        return NULL
    if isinstance(v, Markup):
        return v
    return display_text(v) if isinstance(v, str) else v


def _num(v: Any, digits: int = 1) -> str:
    if v is None:
        return NULL
    if isinstance(v, float):
        return f"{v:.{digits}f}".rstrip("0").rstrip(".") if v != int(v) else f"{int(v)}"
    return str(v)


def _signed(v: Any) -> str:
    if v is None:
        return ""
    return ("+" if v > 0 else "") + _num(v)


def render_page(page: Page, path: str, urls: ServerUrls) -> str:
    """The page at ``path`` (its server path: the "SQL" link is derived from it)."""
    return environment().get_template(page.template).render(
        **page.ctx, title=page.title, u=urls, path=path, sql_url=urls.sql(path))


def render_sql(page: Page, path: str, urls: ServerUrls) -> str:
    """The queries behind the page at ``path``, each with a link that runs it in Datasette."""
    return environment().get_template("sql.html").render(
        title=f"SQL behind: {page.title}", page_title=page.title, queries=page.queries,
        u=urls, path=path, page_url=file_name(path) if urls.static else path, sql_url=None)


def render_error(status: int, message: str, urls: ServerUrls, sql: str | None = None) -> str:
    """The error page; ``sql``: the query that failed, kept in an editor to fix and rerun."""
    return environment().get_template("error.html").render(
        title=f"Error {status}", status=status, message=message, u=urls, path="",
        sql_url=None, sql=sql, db_name=DB_NAME)
