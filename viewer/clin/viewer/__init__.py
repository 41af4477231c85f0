"""``clin view``: a local, read-only web viewer of a CLIN database (runs, evals, trials step by
step, trial vs trial, learnings with their provenance), built as a Datasette plugin, and the
static export of the same pages (``clin report --html``).

Imports only :mod:`clin.memory` (for the shipped Datasette metadata); the pages read the
database with SQL and nothing else.
"""

from .app import ViewerError, build_datasette, check_database, serve
from .export import export_static

__all__ = ["ViewerError", "build_datasette", "check_database", "export_static", "serve"]
