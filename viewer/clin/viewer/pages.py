"""What each viewer page shows, as plain functions of a read-only SQLite connection.

Every page is built by one function here that returns a :class:`Page`: the template to render,
its data, and the SQL it ran (named parameters, so the "SQL" link can show it and Datasette can
run it as written). The server and the static export share these builders, so both show the
same numbers. Ids come from the URL already parsed as integers, and every value reaches SQLite
as a bound parameter: nothing from a request is ever spliced into SQL text.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from .charts import line_chart

SUPPORT_EVENTS = ("added", "kept", "promoted", "revived")


class PageError(Exception):
    """A request the viewer cannot answer; ``status`` is the HTTP status of its error page."""

    status = 400


class NotFound(PageError):
    status = 404


@dataclass
class Query:
    name: str
    sql: str
    params: dict[str, Any]


@dataclass
class Page:
    template: str
    title: str
    ctx: dict[str, Any]
    queries: list[Query] = field(default_factory=list)


class Reader:
    """Runs the queries of one page and keeps them, in order, for its "SQL" view."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.queries: list[Query] = []
        self._tables: set[str] | None = None

    def all(self, name: str, sql: str, **params: Any) -> list[dict[str, Any]]:
        sql = " ".join(line.strip() for line in sql.strip().splitlines())
        self.queries.append(Query(name, sql, params))
        cur = self.conn.execute(sql, params)
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, row)) for row in cur.fetchall()]

    def one(self, name: str, sql: str, **params: Any) -> dict[str, Any] | None:
        rows = self.all(name, sql, **params)
        return rows[0] if rows else None

    def has(self, table: str) -> bool:
        """Whether the database has ``table`` (eval tables arrive with a later migration, and
        the viewer never migrates: it only reads)."""
        if self._tables is None:
            self._tables = {r[0] for r in self.conn.execute(
                "SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")}
        return table in self._tables

    def page(self, template: str, title: str, **ctx: Any) -> Page:
        return Page(template, title, ctx, self.queries)


def _cited(raw: str | None) -> list[int]:
    try:
        ids = json.loads(raw or "[]")
    except ValueError:
        return []
    return [i for i in ids if isinstance(i, int)] if isinstance(ids, list) else []


def _deltas(rows: list[dict[str, Any]], key: str = "score") -> None:
    """Add ``delta``: the change of ``key`` from the previous row (None for the first)."""
    prev = None
    for r in rows:
        cur = r.get(key)
        r["delta"] = None if prev is None or cur is None else cur - prev
        if cur is not None:
            prev = cur


# ---------------------------------------------------------------------- index
def index(conn: sqlite3.Connection, task: str | None = None) -> Page:
    """Runs and evals; ``task`` filters runs (it must be a task the database knows)."""
    r = Reader(conn)
    tasks = [row["task"] for row in r.all(
        "tasks", "SELECT DISTINCT task FROM runs WHERE task IS NOT NULL ORDER BY task")]
    if task is not None and task not in tasks:
        raise PageError(f"no run of a task named {task!r} in this database")
    runs = r.all(
        "runs",
        """
        SELECT r.id, r.started_at, r.status, r.protocol, r.model, r.task, r.variation,
               r.trials_requested, count(t.id) AS trials, round(avg(t.score), 1) AS mean_score,
               max(t.score) AS best_score, sum(t.steps) AS steps,
               group_concat(ifnull(t.score, ''), ',') AS scores
        FROM runs r LEFT JOIN trials t ON t.run_id = r.id
        WHERE (ifnull(:task, '') = '' OR r.task = :task)
        GROUP BY r.id ORDER BY r.id DESC LIMIT 500
        """,
        task=task,
    )
    for run in runs:
        pts = [(i + 1, float(s)) for i, s in enumerate((run.pop("scores") or "").split(","))
               if s != ""]
        run["chart"] = line_chart([("score", pts)], width=160, height=36, spark=True)
    evals = []
    if r.has("evals"):
        evals = r.all(
            "evals",
            """
            SELECT ev.id, ev.protocol, ev.status, ev.model, ev.started_at,
                   (SELECT count(*) FROM eval_episodes e WHERE e.eval_id = ev.id) AS episodes,
                   (SELECT count(*) FROM eval_episodes e JOIN trials t ON t.run_id = e.run_id
                     WHERE e.eval_id = ev.id AND t.status = 'completed') AS trials
            FROM evals ev ORDER BY ev.id DESC
            """,
        )
    total = r.one("learnings_total", "SELECT count(*) AS n FROM learnings")
    return r.page("index.html", "Runs and evals", runs=runs, evals=evals, tasks=tasks, task=task,
                  learnings_total=total["n"] if total else None)


# ---------------------------------------------------------------------- run
def run(conn: sqlite3.Connection, run_id: int) -> Page:
    r = Reader(conn)
    row = r.one("run", "SELECT * FROM runs WHERE id = :run_id", run_id=run_id)
    if row is None:
        raise NotFound(f"no run {run_id}")
    trials = r.all(
        "trials",
        """
        SELECT trial_id, trial, status, score, steps, completed, stop_reason, learnings_written,
               prompt_tokens, completion_tokens
        FROM v_trial_scores WHERE run_id = :run_id ORDER BY trial
        """,
        run_id=run_id,
    )
    _deltas(trials)
    episode = _episode(r, run_id)
    chart = line_chart([("score", [(t["trial"], t["score"]) for t in trials
                                   if t["score"] is not None])], y_max=100)
    steps_chart = line_chart([("steps", [(t["trial"], t["steps"]) for t in trials
                                         if t["steps"] is not None])])
    produced = r.all(
        "learnings_produced",
        """
        SELECT l.id, l.text, l.confidence, l.status, l.support, t.idx AS trial,
               t.id AS trial_id
        FROM learnings l JOIN trials t ON t.id = l.first_trial_id
        WHERE t.run_id = :run_id ORDER BY t.idx, l.id
        """,
        run_id=run_id,
    )
    return r.page("run.html", f"Run {run_id}: {row['task']}", run=row, trials=trials,
                  chart=chart, steps_chart=steps_chart, episode=episode, produced=produced)


def _episode(r: Reader, run_id: int) -> dict[str, Any] | None:
    if not r.has("eval_episodes"):
        return None
    return r.one("episode", "SELECT id, eval_id, phase, task, variation FROM eval_episodes "
                            "WHERE run_id = :run_id", run_id=run_id)


# ---------------------------------------------------------------------- eval
def eval_page(conn: sqlite3.Connection, eval_id: int, task: str | None = None) -> Page:
    r = Reader(conn)
    if not r.has("evals"):
        raise NotFound("this database has no evals")
    ev = r.one("eval", "SELECT * FROM evals WHERE id = :eval_id", eval_id=eval_id)
    if ev is None:
        raise NotFound(f"no eval {eval_id}")
    tasks = [row["task"] for row in r.all(
        "tasks", "SELECT DISTINCT task FROM eval_episodes WHERE eval_id = :eval_id ORDER BY task",
        eval_id=eval_id)]
    if task is not None and task not in tasks:
        raise PageError(f"eval {eval_id} has no task named {task!r}")
    episodes = r.all(
        "episodes",
        """
        SELECT e.id, e.phase, e.task, e.variation, e.status, e.run_id, e.trials AS requested,
               count(t.id) AS trials, round(avg(t.score), 1) AS mean_score,
               max(t.score) AS best_score, sum(t.steps) AS steps,
               group_concat(ifnull(t.score, ''), ',') AS scores
        FROM eval_episodes e LEFT JOIN trials t ON t.run_id = e.run_id
        WHERE e.eval_id = :eval_id AND (ifnull(:task, '') = '' OR e.task = :task)
        GROUP BY e.id ORDER BY e.id
        """,
        eval_id=eval_id, task=task,
    )
    for ep in episodes:
        pts = [(i + 1, float(s)) for i, s in enumerate((ep.pop("scores") or "").split(","))
               if s != ""]
        ep["chart"] = line_chart([("score", pts)], width=160, height=36, spark=True)
    curve = r.all(
        "curve",
        """
        SELECT e.phase, t.idx AS trial, count(*) AS episodes, round(avg(t.score), 2) AS score,
               round(avg(t.steps), 2) AS steps
        FROM eval_episodes e JOIN trials t ON t.run_id = e.run_id AND t.status = 'completed'
        WHERE e.eval_id = :eval_id AND (ifnull(:task, '') = '' OR e.task = :task)
        GROUP BY e.phase, t.idx ORDER BY e.phase, t.idx
        """,
        eval_id=eval_id, task=task,
    )
    series: dict[str, list[tuple[float, float]]] = {}
    for c in curve:
        series.setdefault(c["phase"], []).append((c["trial"], c["score"]))
    metas = r.all(
        "meta_memories",
        """
        SELECT m.id AS meta_id, m.key, m.status, l.id AS learning_id, l.text, l.confidence
        FROM meta_memories m JOIN meta_learnings ml ON ml.meta_id = m.id
        JOIN learnings l ON l.id = ml.learning_id
        WHERE m.eval_id = :eval_id ORDER BY m.id, l.id
        """,
        eval_id=eval_id,
    )
    return r.page("eval.html", f"Eval {eval_id}: {ev['protocol']}", eval=ev, episodes=episodes,
                  curve=curve, chart=line_chart(sorted(series.items()), y_max=100),
                  metas=metas, tasks=tasks, task=task)


# ---------------------------------------------------------------------- trial
_GOAL_MARK = "\nTASK: "  # where the controller's system prompt states the task


def _trial_row(r: Reader, trial_id: int) -> dict[str, Any]:
    row = r.one(
        "trial",
        """
        SELECT t.*, r.protocol, r.model, r.trials_requested
        FROM trials t JOIN runs r ON r.id = t.run_id WHERE t.id = :trial_id
        """,
        trial_id=trial_id,
    )
    if row is None:
        raise NotFound(f"no trial {trial_id}")
    # The goal text is stored only inside the prompts: the paragraph after "TASK: " in the
    # trial's first prompt that has one.
    goal = r.one(
        "goal",
        """
        SELECT substr(prompt, instr(prompt, :mark) + length(:mark), 4000) AS goal
        FROM llm_calls WHERE trial_id = :trial_id AND instr(prompt, :mark) > 0
        ORDER BY id LIMIT 1
        """,
        trial_id=trial_id, mark=_GOAL_MARK,
    )
    row["goal"] = goal["goal"].split("\n\n")[0].strip() if goal and goal["goal"] else None
    return row


def _steps(r: Reader, trial_id: int) -> list[dict[str, Any]]:
    steps = r.all(
        "steps",
        """
        SELECT idx, proposal, action, grounding, rationale, cited_learning_ids, observation,
               reward, score, done, llm_ms, env_ms
        FROM steps WHERE trial_id = :trial_id ORDER BY idx
        """,
        trial_id=trial_id,
    )
    _deltas(steps)
    for s in steps:
        s["cited"] = _cited(s.pop("cited_learning_ids"))
    return steps


def _calls_by_step(r: Reader, trial_id: int) -> tuple[dict[int | None, list[dict[str, Any]]],
                                                     dict[str, int]]:
    calls = r.all(
        "llm_calls",
        """
        SELECT id, step_idx, purpose, model, prompt_tokens, completion_tokens, latency_ms,
               attempts, error
        FROM llm_calls WHERE trial_id = :trial_id ORDER BY id
        """,
        trial_id=trial_id,
    )
    by_step: dict[int | None, list[dict[str, Any]]] = {}
    totals = {"prompt_tokens": 0, "completion_tokens": 0, "calls": len(calls)}
    for c in calls:
        by_step.setdefault(c["step_idx"], []).append(c)
        totals["prompt_tokens"] += c["prompt_tokens"] or 0
        totals["completion_tokens"] += c["completion_tokens"] or 0
    return by_step, totals


def _learning_texts(r: Reader, ids: set[int]) -> dict[int, dict[str, Any]]:
    if not ids:
        return {}
    rows = r.all(
        "cited_learnings",
        """
        SELECT id, text, confidence, status, first_trial_id FROM learnings
        WHERE id IN (SELECT value FROM json_each(:ids))
        """,
        ids=json.dumps(sorted(ids)),
    )
    return {row["id"]: row for row in rows}


def trial(conn: sqlite3.Connection, trial_id: int, *, with_prompts: bool = False) -> Page:
    """The trajectory of one trial. ``with_prompts`` adds each LLM call's prompt and answer
    (the static export's steps file; the server shows them on each step's own page)."""
    r = Reader(conn)
    t = _trial_row(r, trial_id)
    siblings = r.all("run_trials", "SELECT id, idx, score, status FROM trials "
                                   "WHERE run_id = :run_id ORDER BY idx", run_id=t["run_id"])
    steps = _steps(r, trial_id)
    by_step, totals = _calls_by_step(r, trial_id)
    if with_prompts:
        texts = {c["id"]: c for c in r.all(
            "llm_texts", "SELECT id, prompt, response FROM llm_calls WHERE trial_id = :trial_id",
            trial_id=trial_id)}
        for calls in by_step.values():
            for c in calls:
                c.update(texts.get(c["id"], {}))
    learnings = _learning_texts(r, {i for s in steps for i in s["cited"]})
    for s in steps:
        s["calls"] = by_step.get(s["idx"], [])
        s["reasks"] = sum(1 for c in s["calls"] if c["purpose"] == "reask")
    reflection = r.one(
        "reflection",
        "SELECT id, response FROM llm_calls WHERE trial_id = :trial_id "
        "AND purpose = 'reflection' ORDER BY id DESC LIMIT 1",
        trial_id=trial_id,
    )
    events = r.all(
        "learning_events",
        "SELECT learning_id, event, confidence, text FROM learning_events "
        "WHERE trial_id = :trial_id ORDER BY id",
        trial_id=trial_id,
    )
    pos = next((i for i, s in enumerate(siblings) if s["id"] == trial_id), 0)
    prev_t = siblings[pos - 1] if pos > 0 else None
    next_t = siblings[pos + 1] if pos + 1 < len(siblings) else None
    chart = line_chart([("score", [(s["idx"], s["score"]) for s in steps
                                   if s["score"] is not None])], y_max=100, x_label="step",
                       height=140)
    return r.page(
        "trial.html" if not with_prompts else "trial_steps.html",
        f"Trial {t['idx']} of run {t['run_id']} ({t['task']})",
        trial=t, steps=steps, learnings=learnings, reflection=reflection, events=events,
        siblings=siblings, prev=prev_t, next=next_t, totals=totals, chart=chart,
        reflection_calls=by_step.get(None, []), episode=_episode(r, t["run_id"]),
    )


def step(conn: sqlite3.Connection, trial_id: int, idx: int) -> Page:
    """One step with its LLM calls (prompt and answer) and the learnings it cited."""
    r = Reader(conn)
    t = _trial_row(r, trial_id)
    s = r.one(
        "step",
        """
        SELECT idx, proposal, action, grounding, rationale, cited_learning_ids, observation,
               reward, score, done, llm_ms, env_ms, overhead_ms, created_at
        FROM steps WHERE trial_id = :trial_id AND idx = :idx
        """,
        trial_id=trial_id, idx=idx,
    )
    if s is None:
        raise NotFound(f"trial {trial_id} has no step {idx}")
    s["cited"] = _cited(s.pop("cited_learning_ids"))
    prev_score = r.one("previous_score", "SELECT score FROM steps WHERE trial_id = :trial_id "
                       "AND idx < :idx ORDER BY idx DESC LIMIT 1", trial_id=trial_id, idx=idx)
    s["delta"] = (None if prev_score is None or s["score"] is None or prev_score["score"] is None
                  else s["score"] - prev_score["score"])
    calls = r.all(
        "llm_calls",
        """
        SELECT id, purpose, model, prompt_tokens, completion_tokens, latency_ms, attempts,
               error, prompt, response
        FROM llm_calls WHERE trial_id = :trial_id AND step_idx = :idx ORDER BY id
        """,
        trial_id=trial_id, idx=idx,
    )
    learnings = _learning_texts(r, set(s["cited"]))
    last = r.one("last_step", "SELECT max(idx) AS n FROM steps WHERE trial_id = :trial_id",
                 trial_id=trial_id)
    return r.page("step.html", f"Step {idx} of trial {t['idx']} (run {t['run_id']})", trial=t,
                  step=s, calls=calls, learnings=learnings, last=(last or {}).get("n") or idx)


def llm_call(conn: sqlite3.Connection, call_id: int) -> Page:
    r = Reader(conn)
    c = r.one("llm_call", "SELECT c.*, t.idx AS trial_idx FROM llm_calls c "
              "LEFT JOIN trials t ON t.id = c.trial_id WHERE c.id = :call_id", call_id=call_id)
    if c is None:
        raise NotFound(f"no LLM call {call_id}")
    return r.page("llm.html", f"LLM call {call_id} ({c['purpose']})", call=c)


# ---------------------------------------------------------------------- compare
def compare(conn: sqlite3.Connection, a: int, b: int) -> Page:
    """Two trials side by side; the learning events between them are those written by the
    reflections of trials a .. b-1 of the same run (what trial b could see that a could not)."""
    if a == b:
        raise PageError("pick two different trials to compare")
    r = Reader(conn)
    ta, tb = _trial_row(r, a), _trial_row(r, b)
    if ta["idx"] > tb["idx"] and ta["run_id"] == tb["run_id"]:
        ta, tb = tb, ta
    sa, sb = _steps(r, ta["id"]), _steps(r, tb["id"])
    n = max(len(sa), len(sb))
    rows, diverge = [], None
    for i in range(n):
        x = sa[i] if i < len(sa) else None
        y = sb[i] if i < len(sb) else None
        same = x is not None and y is not None and x["action"] == y["action"]
        if not same and diverge is None:
            diverge = i + 1
        rows.append({"idx": i + 1, "a": x, "b": y, "same": same})
    between: list[dict[str, Any]] = []
    if ta["run_id"] == tb["run_id"]:
        between = r.all(
            "events_between",
            """
            SELECT e.learning_id, e.event, e.confidence, e.text, t.id AS trial_id, t.idx AS trial
            FROM learning_events e JOIN trials t ON t.id = e.trial_id
            WHERE t.run_id = :run_id AND t.idx >= :from_idx AND t.idx < :to_idx
              AND e.event != 'kept'
            ORDER BY e.id
            """,
            run_id=ta["run_id"], from_idx=ta["idx"], to_idx=tb["idx"],
        )
    learnings = _learning_texts(r, {i for s in sa + sb for i in s["cited"]})
    others = r.all("run_trials", "SELECT id, idx, score FROM trials WHERE run_id = :run_id "
                   "ORDER BY idx", run_id=ta["run_id"])
    delta = (None if ta["score"] is None or tb["score"] is None else tb["score"] - ta["score"])
    return r.page(
        "compare.html", f"Trial {ta['idx']} vs trial {tb['idx']} (run {ta['run_id']})",
        a=ta, b=tb, rows=rows, diverge=diverge, between=between, delta=delta,
        learnings=learnings, others=others, same_run=ta["run_id"] == tb["run_id"],
    )


# ---------------------------------------------------------------------- learning
def learning(conn: sqlite3.Connection, learning_id: int) -> Page:
    r = Reader(conn)
    lr = r.one(
        "learning",
        """
        SELECT l.*, round(l.score_sum / max(l.support, 1), 2) AS mean_score,
               ft.run_id AS first_run_id, ft.idx AS first_trial,
               lt.run_id AS last_run_id, lt.idx AS last_trial
        FROM learnings l LEFT JOIN trials ft ON ft.id = l.first_trial_id
        LEFT JOIN trials lt ON lt.id = l.last_trial_id
        WHERE l.id = :learning_id
        """,
        learning_id=learning_id,
    )
    if lr is None:
        raise NotFound(f"no learning {learning_id}")
    history = r.all(
        "history",
        """
        SELECT e.id, e.event, e.confidence, e.text, e.score, e.created_at, e.trial_id,
               t.run_id, t.idx AS trial
        FROM learning_events e LEFT JOIN trials t ON t.id = e.trial_id
        WHERE e.learning_id = :learning_id ORDER BY e.id
        """,
        learning_id=learning_id,
    )
    support = 0
    pts = []
    for n, h in enumerate(history, start=1):
        if h["event"] in SUPPORT_EVENTS:
            support += 1
        h["support"] = support
        pts.append((n, support))
    # Citing steps: only the trials of the learning's own scope that began after it was written
    # can cite it, which keeps this an index range over trials, not a scan of every step.
    cited = r.all(
        "citing_steps",
        """
        SELECT t.id AS trial_id, t.run_id, t.idx AS trial, t.score AS trial_score,
               s.idx AS step, s.action, s.score
        FROM trials t JOIN steps s ON s.trial_id = t.id
        WHERE t.id > :first_trial_id AND t.namespace = :namespace
          AND (ifnull(:task, '') = '' OR t.task = :task)
          AND s.cited_learning_ids LIKE '%' || :learning_id || '%'
          AND EXISTS (SELECT 1 FROM json_each(s.cited_learning_ids) j
                      WHERE j.value = CAST(:learning_id AS INTEGER))
        ORDER BY t.id, s.idx LIMIT 1000
        """,
        learning_id=learning_id, first_trial_id=lr["first_trial_id"] or 0,
        namespace=lr["namespace"], task=lr["task"],
    )
    used: dict[int, dict[str, Any]] = {}
    for c in cited:
        u = used.setdefault(c["trial_id"], {"trial_id": c["trial_id"], "run_id": c["run_id"],
                                            "trial": c["trial"], "score": c["trial_score"],
                                            "steps": 0})
        u["steps"] += 1
    sources = []
    if r.has("meta_learnings"):
        sources = r.all(
            "meta_sources",
            """
            SELECT m.id AS meta_id, m.eval_id, m.key, s.source_trial_id, s.source_run_id,
                   st.idx AS source_trial, s.source_task, s.source_variation, s.source_score
            FROM meta_learnings ml JOIN meta_memories m ON m.id = ml.meta_id
            JOIN meta_sources s ON s.meta_id = m.id
            LEFT JOIN trials st ON st.id = s.source_trial_id
            WHERE ml.learning_id = :learning_id ORDER BY m.id, s.id
            """,
            learning_id=learning_id,
        )
    trials_used = list(used.values())
    score_chart = line_chart([("score", [(i + 1, u["score"]) for i, u in enumerate(trials_used)
                                         if u["score"] is not None])], y_max=100,
                             x_label="trials that cited it, in order")
    return r.page(
        "learning.html", f"Learning {learning_id}", learning=lr, history=history,
        support_chart=line_chart([("support", pts)], x_label="event"), cited=cited,
        trials_used=trials_used, score_chart=score_chart, sources=sources,
        cited_capped=len(cited) >= 1000,
    )


# ---------------------------------------------------------------------- learnings
PAGE_SIZE = 100
STATUSES = ("active", "retired")
CONFIDENCES = ("should", "may")
# The orders a user can pick; only these fixed SQL fragments ever reach ORDER BY.
SORTS = {
    "support": "l.support DESC, l.last_seen DESC, l.id DESC",
    "recent": "l.last_seen DESC, l.id DESC",
    "relevance": "f.rank, l.support DESC, l.id DESC",
}
ANY_TASK = "-"  # the task filter's value for learnings that hold for any task


def learnings(conn: sqlite3.Connection, q: str | None = None, task: str | None = None,
              status: str | None = None, confidence: str | None = None,
              sort: str | None = None, page: str | None = None) -> Page:
    """Every learning, a page of :data:`PAGE_SIZE` at a time: full-text search (FTS5, every
    word must match, each quoted so no operator reaches it), filters by task, status and confidence, sorted by
    support, recency, or (with a search) relevance."""
    from clin.memory.recall import fts_query

    r = Reader(conn)
    tasks = [row["task"] for row in r.all(
        "tasks", "SELECT DISTINCT task FROM learnings WHERE task IS NOT NULL ORDER BY task")]
    if task is not None and task != ANY_TASK and task not in tasks:
        raise PageError(f"no learning of a task named {task!r}")
    if status is not None and status not in STATUSES:
        raise PageError(f"status is one of {', '.join(STATUSES)}")
    if confidence is not None and confidence not in CONFIDENCES:
        raise PageError(f"confidence is one of {', '.join(CONFIDENCES)}")
    fts = fts_query(q, every_word=True) if q else None
    sort_asked = sort or ""
    sort = sort or ("relevance" if fts else "support")
    if sort not in SORTS:
        raise PageError(f"sort is one of {', '.join(SORTS)}")
    if sort == "relevance" and fts is None:
        sort = "support"
    if page is not None and not (page.isascii() and page.isdigit() and 0 < int(page) < 10**9):
        raise PageError("page is a positive number")
    n = int(page or 1)
    # FTS5 refuses MATCH NULL, so without a search the join is to nothing at all.
    matches = ("(SELECT rowid, rank FROM learnings_fts WHERE learnings_fts MATCH :fts)"
               if fts is not None else "(SELECT NULL AS rowid, NULL AS rank WHERE 0)")
    where = f"""
        FROM learnings l
        LEFT JOIN {matches} f ON f.rowid = l.id
        LEFT JOIN trials ft ON ft.id = l.first_trial_id
        WHERE (:fts IS NULL OR f.rowid IS NOT NULL)
          AND (ifnull(:task, '') = '' OR (:task = '-' AND l.task IS NULL) OR l.task = :task)
          AND (ifnull(:status, '') = '' OR l.status = :status)
          AND (ifnull(:confidence, '') = '' OR l.confidence = :confidence)
    """
    params = {"fts": fts, "task": task, "status": status, "confidence": confidence}
    total = r.one("count", "SELECT count(*) AS n " + where, **params)["n"]  # type: ignore[index]
    rows = r.all(
        "learnings",
        f"""
        SELECT l.id, l.text, l.task, l.variation, l.env, l.status, l.confidence, l.support,
               round(l.score_sum / max(l.support, 1), 2) AS mean_score, l.last_seen,
               ft.run_id AS first_run_id, ft.idx AS first_trial, l.first_trial_id
        {where}
        ORDER BY {SORTS[sort]} LIMIT :limit OFFSET :offset
        """,
        **params, limit=PAGE_SIZE, offset=(n - 1) * PAGE_SIZE,
    )
    pages = max(1, -(-total // PAGE_SIZE))
    if n > pages:
        raise NotFound(f"there are {pages} pages of learnings for this selection")
    return r.page("learnings.html", "Learnings", rows=rows, total=total, tasks=tasks,
                  q=q or "", task=task or "", status=status or "", confidence=confidence or "",
                  sort=sort, sort_asked=sort_asked, page_no=n, pages=pages, statuses=STATUSES,
                  confidences=CONFIDENCES, sorts=list(SORTS), searched=fts is not None,
                  any_task=ANY_TASK)
