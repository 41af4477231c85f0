"""The viewer's URLs: each a regular expression of integer ids, the query-string names it
accepts, and the page builder it calls. Anything else (another name in the query string, an id
that is not a plain number) is answered with an error page before any SQL runs."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from . import pages
from .pages import NotFound, Page, PageError

ID = r"[0-9]{1,18}"  # ASCII digits only (\d matches other scripts); fits SQLite's int64


@dataclass(frozen=True)
class Route:
    pattern: str
    build: Callable[..., Page]
    args: tuple[str, ...] = ()  # accepted query-string names

    @property
    def regex(self) -> re.Pattern[str]:
        return re.compile(f"^{self.pattern}$")


ROUTES = (
    Route("/", pages.index, ("task",)),
    Route(f"/run/(?P<run_id>{ID})", pages.run),
    Route(f"/eval/(?P<eval_id>{ID})", pages.eval_page, ("task",)),
    Route(f"/trial/(?P<trial_id>{ID})", pages.trial),
    Route(f"/trial/(?P<trial_id>{ID})/step/(?P<idx>{ID})", pages.step),
    Route(f"/compare/(?P<a>{ID})/(?P<b>{ID})", pages.compare),
    Route(f"/learning/(?P<learning_id>{ID})", pages.learning),
    Route("/learnings", pages.learnings, ("q", "task", "status", "confidence", "sort", "page")),
    Route(f"/llm/(?P<call_id>{ID})", pages.llm_call),
)


# Any path under the viewer's prefixes is the viewer's (its own 404 if no route matches).
VIEWER_PREFIXES = re.compile(r"^/(run|eval|trial|compare|learning|learnings|llm|sql)([/?].*)?$")


def is_viewer_path(path: str) -> bool:
    """Whether ``path`` is one of the viewer's pages (not one of Datasette's)."""
    return path == "/" or VIEWER_PREFIXES.match(path) is not None


def resolve(path: str, args: Mapping[str, list[str]]) -> Callable[[sqlite3.Connection], Page]:
    """The builder for ``path`` and its query string, bound to its arguments; raises
    :class:`PageError` for an unknown path or query-string name."""
    for route in ROUTES:
        m = route.regex.match(path)
        if m is None:
            continue
        kwargs: dict[str, object] = {k: int(v) for k, v in m.groupdict().items()}
        for name, values in args.items():
            if name not in route.args:
                raise PageError(f"unknown query parameter {name!r}")
            if len(values) != 1:
                raise PageError(f"give {name!r} once")
            kwargs[name] = values[0] or None
        return lambda conn: route.build(conn, **kwargs)
    raise NotFound(f"no page at {path!r}")
