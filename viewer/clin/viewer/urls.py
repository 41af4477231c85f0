"""Where each page lives: served (``/trial/5``) or exported to a folder (``trial-5.html``).

Templates only ever call these methods, so one set of templates serves both. A static export
holds some pages only; a link to a page it lacks is ``None`` and renders as plain text.
"""

from __future__ import annotations

from urllib.parse import urlencode

from .pages import Query

DB_NAME = "clin"  # the Datasette name of the database, whatever its file is called
SCRIPT_PATH = "/-/clin-viewer.js"
# Selects marked data-autosubmit submit their form when changed.
SCRIPT = """document.addEventListener("change", function (e) {
  if (e.target.matches("select[data-autosubmit]")) e.target.form.submit();
});
"""


class ServerUrls:
    static = False

    def index(self, task: str | None = None) -> str:
        return "/" + (f"?{urlencode({'task': task})}" if task else "")

    def run(self, run_id: int | None) -> str | None:
        return None if run_id is None else f"/run/{run_id}"

    def eval(self, eval_id: int | None, task: str | None = None) -> str | None:
        if eval_id is None:
            return None
        return f"/eval/{eval_id}" + (f"?{urlencode({'task': task})}" if task else "")

    def trial(self, trial_id: int | None) -> str | None:
        return None if trial_id is None else f"/trial/{trial_id}"

    def step(self, trial_id: int, idx: int) -> str | None:
        return f"/trial/{trial_id}/step/{idx}"

    def compare(self, a: int, b: int) -> str | None:
        return f"/compare/{a}/{b}"

    def learning(self, learning_id: int | None) -> str | None:
        return None if learning_id is None else f"/learning/{learning_id}"

    def llm(self, call_id: int, trial_id: int | None = None) -> str | None:
        return f"/llm/{call_id}"

    def learning_list(self, **filters: str | int | None) -> str | None:
        """The Learnings page with these filters (empty ones left out)."""
        args = {k: v for k, v in filters.items() if v not in (None, "")}
        return "/learnings" + (f"?{urlencode(args)}" if args else "")

    def script(self) -> str:
        """The viewer's one script (no page has inline script: the CSP forbids it)."""
        return SCRIPT_PATH

    def sql(self, path: str) -> str | None:
        """The page showing the SQL behind the page at ``path``."""
        return "/sql" + path

    def datasette_query(self, q: Query) -> str | None:
        """Datasette's query page, running ``q`` with its parameters (editable there)."""
        params = {k: "" if v is None else v for k, v in q.params.items()}
        return f"/{DB_NAME}?" + urlencode({"sql": q.sql, **params})

    def table(self, name: str) -> str | None:
        return f"/{DB_NAME}/{name}"


class StaticUrls(ServerUrls):
    """File names in an exported folder; only pages listed in the export get links."""

    static = True

    def __init__(self, runs: set[int], trials: set[int], learnings: set[int],
                 evals: set[int], compares: set[tuple[int, int]]) -> None:
        self.runs, self.trials, self.learnings = runs, trials, learnings
        self.evals, self.compares = evals, compares

    def index(self, task: str | None = None) -> str:
        return "index.html"

    def run(self, run_id: int | None) -> str | None:
        return f"run-{run_id}.html" if run_id in self.runs else None

    def eval(self, eval_id: int | None, task: str | None = None) -> str | None:
        return f"eval-{eval_id}.html" if eval_id in self.evals and not task else None

    def trial(self, trial_id: int | None) -> str | None:
        return f"trial-{trial_id}.html" if trial_id in self.trials else None

    def step(self, trial_id: int, idx: int) -> str | None:
        return f"trial-{trial_id}-steps.html#step-{idx}" if trial_id in self.trials else None

    def compare(self, a: int, b: int) -> str | None:
        return f"compare-{a}-{b}.html" if (a, b) in self.compares else None

    def learning(self, learning_id: int | None) -> str | None:
        return f"learning-{learning_id}.html" if learning_id in self.learnings else None

    def llm(self, call_id: int, trial_id: int | None = None) -> str | None:
        if trial_id in self.trials:
            return f"trial-{trial_id}-steps.html#call-{call_id}"
        return None

    def sql(self, path: str) -> str | None:
        return file_name(path).removesuffix(".html") + "-sql.html"

    def learning_list(self, **filters: str | int | None) -> str | None:
        return None

    def datasette_query(self, q: Query) -> str | None:
        return None

    def table(self, name: str) -> str | None:
        return None


def file_name(path: str) -> str:
    """``/trial/5`` -> ``trial-5.html``; ``/`` -> ``index.html``."""
    parts = [p for p in path.split("?")[0].split("/") if p]
    return "-".join(parts) + ".html" if parts else "index.html"
