"""``clin view``: a local, read-only web viewer of a CLIN database (runs, evals, trials step by
step, trial vs trial, learnings with their provenance), built as a Datasette plugin, and the
static export of the same pages (``clin report --html``).

Imports only :mod:`clin.memory` (for the shipped Datasette metadata); the pages read the
database with SQL and nothing else.
"""

from .database import ViewerError, check_database
from .export import export_static

# The server (Datasette) is clin.viewer.app: build_datasette, serve. Importing this package
# or the static export does not load Datasette.
__all__ = ["ViewerError", "check_database", "export_static"]
