"""``Memory``: the facade over one memory file. Each method is a few lines that open a
transaction where several owners must commit together and call the module that owns the
table: ``db`` (connection, schema, transactions), ``runs`` (runs, trials, steps, LLM calls),
``learnings`` (learnings and their events), ``recall`` (reading them back), ``reflect``
(the LLM reflection for agents outside CLIN)."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlite_utils
from typing_extensions import Self

from . import learnings, migrations, recall, reflect, runs
from .abstractions import Abstraction, ParseReport
from .db import Database, Schema
from .learnings import AddResult, Learning, LearningRecord, ReflectionOutcome
from .record import StepRecord, TraceItem
from .reflect import ReflectionInput
from .render import RenderedMemory, render
from .runs import RunStatus, StopStatus, TrialStatus
from .scope import Scope


class Memory:
    """A CLIN memory stored in one SQLite file (created if missing).

    ``schemas`` are other components' tables kept in the same file (the eval tables of
    ``clin.trials``), migrated by the same runner after the memory's own.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        create: bool = True,
        schemas: Sequence[Schema] = (),
    ) -> None:
        self._store = Database(path, [migrations.SCHEMA, *schemas], create=create,
                               moved=migrations.MOVED)
        self.path: Path = self._store.path
        # The one handle on the file, for queries of your own (``mem.db.query(sql)``,
        # ``mem.db["learnings"]``, ``mem.db.conn``); writes go through the methods below.
        self.db: sqlite_utils.Database = self._store.db

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction taken up front (BEGIN IMMEDIATE); see ``memory.db``."""
        with self._store.transaction() as conn:
            yield conn

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ runs and trials
    def start_run(self, *, protocol: str = "custom", model: str | None = None,
                  scope: Scope | None = None, trials_requested: int | None = None,
                  config: dict[str, Any] | None = None) -> int:
        return runs.start_run(self._store, protocol=protocol, model=model, scope=scope,
                              trials_requested=trials_requested, config=config)

    def finish_run(self, run_id: int, status: RunStatus = "finished",
                   error: str | None = None) -> None:
        with self.transaction() as conn:
            runs.finish_run(conn, run_id, status, error)

    def close_run(self, run_id: int, status: StopStatus, error: str | None = None) -> None:
        """End a run that stopped early (``interrupted`` / ``failed``): its unfinished trials
        get the same status, in the same transaction."""
        with self.transaction() as conn:
            runs.close_unfinished_trials(conn, run_id, status, error)
            runs.finish_run(conn, run_id, status, error)

    def close_unfinished_trials(self, run_id: int, status: StopStatus,
                                stop_reason: str | None = None) -> int:
        """Mark the run's trials left ``running`` as ``status``; return how many."""
        with self.transaction() as conn:
            return runs.close_unfinished_trials(conn, run_id, status, stop_reason)

    def reopen_run(self, run_id: int, trials_requested: int) -> int:
        """Mark a run running again, its unfinished trials interrupted; return how many
        trials it completed."""
        return runs.reopen_run(self._store, run_id, trials_requested)

    def latest_unfinished_run(self, scope: Scope, protocol: str) -> int | None:
        return runs.latest_unfinished_run(self._store, scope, protocol)

    def start_trial(self, run_id: int, idx: int, scope: Scope) -> int:
        return runs.start_trial(self._store, run_id, idx, scope)

    def add_step(self, trial_id: int, step: StepRecord) -> int:
        return runs.add_step(self._store, trial_id, step)

    def add_llm_call(
        self,
        *,
        purpose: str,
        model: str | None,
        prompt_tokens: int | None,
        completion_tokens: int | None,
        latency_ms: float | None,
        attempts: int = 1,
        run_id: int | None = None,
        trial_id: int | None = None,
        step_idx: int | None = None,
        prompt: str | None = None,
        response: str | None = None,
        error: str | None = None,
    ) -> int:
        return runs.add_llm_call(
            self._store, run_id=run_id, trial_id=trial_id, step_idx=step_idx, purpose=purpose,
            model=model, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
            latency_ms=latency_ms, attempts=attempts, error=error, prompt=prompt,
            response=response,
        )

    def finish_trial(
        self,
        trial_id: int,
        *,
        score: float,
        completed: bool,
        stop_reason: str,
        reflection: ParseReport | None = None,
        scope: Scope | None = None,
    ) -> ReflectionOutcome:
        """Commit the trial's outcome and its reflection's learnings atomically.
        A non-finite ``score`` raises ``ValueError`` before anything is written."""
        score = runs.finite_score(score)
        if reflection is not None and scope is None:
            raise ValueError("finish_trial needs the scope the learnings belong to")
        outcome = ReflectionOutcome()
        with self.transaction() as conn:
            if reflection is not None and scope is not None:
                outcome = learnings.merge_reflection(conn, scope, reflection,
                                                     trial_id=trial_id, score=score)
            runs.complete_trial(conn, trial_id, score=score, completed=completed,
                                stop_reason=stop_reason, written=outcome.written,
                                rejected=outcome.rejected)
        return outcome

    def mark_trial(self, trial_id: int, status: TrialStatus,
                   stop_reason: str | None = None) -> None:
        """Mark a trial that did not finish (``interrupted`` / ``failed``)."""
        with self.transaction() as conn:
            runs.mark_trial(conn, trial_id, status, stop_reason)

    def trials(self, run_id: int) -> list[dict[str, Any]]:
        """The run's trials as ``v_trial_scores`` rows (score, steps, tokens)."""
        return list(self._store.rows("SELECT * FROM v_trial_scores WHERE run_id = ?", [run_id]))

    def completed_trials(self, run_id: int) -> list[dict[str, Any]]:
        return runs.completed_trials(self._store, run_id)

    def best_trial(self, run_id: int) -> dict[str, Any] | None:
        return runs.best_trial(self._store, run_id)

    def trial_counts(self, run_ids: Sequence[int]) -> tuple[int, list[dict[str, Any]]]:
        return runs.trial_counts(self._store, run_ids)

    # ------------------------------------------------------------------ learnings
    def apply_reflection(self, scope: Scope, report: ParseReport, *, trial_id: int | None = None,
                         score: float | None = None) -> ReflectionOutcome:
        """Merge parsed abstractions into ``scope`` (for agents that manage trials themselves)."""
        with self.transaction() as conn:
            return learnings.merge_reflection(conn, scope, report, trial_id=trial_id,
                                              score=score)

    def add_learning(self, scope: Scope, learning: str | Abstraction, *,
                     trial_id: int | None = None) -> AddResult:
        """Record one learning as it happens (no reflection): see ``memory.learnings``."""
        with self.transaction() as conn:
            return learnings.add_learning(conn, scope, learning, trial_id=trial_id)

    def retire(self, learning_id: int) -> bool:
        """Retire one active learning by hand (nothing is deleted; its history says so);
        False when it was not active."""
        with self.transaction() as conn:
            return learnings.retire(conn, learning_id)

    def import_records(self, records: Iterable[LearningRecord | dict[str, Any]]) -> int:
        """Insert learning records in batches (one transaction each); existing (scope, key)
        pairs are left untouched. Returns the number of rows added."""
        added = 0
        for batch in learnings.import_batches(records):
            with self.transaction() as conn:
                added += learnings.import_rows(conn, batch)
        return added

    def llm_call_tokens(self, call_ids: Sequence[int]) -> int:
        """Prompt plus completion tokens of the given ``llm_calls`` rows."""
        return runs.llm_call_tokens(self._store, call_ids)

    def learning_ids(self, scope: Scope, keys: Sequence[str]) -> list[int]:
        return learnings.ids_for_keys(self._store.conn, scope, keys)

    def learnings_written_by(self, trial_id: int) -> list[str]:
        """The learnings the reflection on ``trial_id`` asserted, as their texts."""
        return learnings.texts_written_by(self._store.conn, trial_id)

    def recall(
        self, scope: Scope, query: str | None = None, k: int | None = None
    ) -> list[Learning]:
        """Active learnings that apply to ``scope``, most specific and most relevant first
        (see ``memory.recall``)."""
        return recall.recall(self._store, scope, query, k)

    def learning(self, learning_id: int) -> Learning | None:
        """One learning by id (active or retired), or None."""
        return recall.learning(self._store, learning_id)

    def history(self, learning_id: int) -> list[dict[str, Any]]:
        return recall.history(self._store, learning_id)

    def inherit(self, scope: Scope) -> list[int]:
        """Copy what ``scope`` sees from broader scopes into ``scope`` itself, so its own
        reflections can keep, demote or retire those learnings there while the originals
        stay as they are for every other scope. Idempotent; returns the new copies' ids."""
        own = (scope.env, scope.task, scope.variation)
        sources = [lr for lr in self.recall(scope) if (lr.env, lr.task, lr.variation) != own]
        if not sources:
            return []
        with self.transaction() as conn:
            return learnings.inherit(conn, scope, sources)

    # ------------------------------------------------------------------ library API (issue 4)
    def record_trial(self, scope: Scope, trace: Sequence[TraceItem], score: float, *,
                     completed: bool | None = None, stop_reason: str = "finished",
                     run_id: int | None = None) -> int:
        """Store a finished attempt (``(action, observation)`` pairs or step mappings) and
        its 0..100 score in one transaction; return the trial id. A non-finite score
        raises ``ValueError``."""
        return runs.record_trial(self._store, scope, trace, score, completed=completed,
                                 stop_reason=stop_reason, run_id=run_id)

    def reflect(self, scope: Scope, llm: Any, *, trial_id: int | None = None,
                goal: str | None = None) -> ReflectionOutcome:
        """Let ``llm`` (a langchain-core chat model or a ``str -> str`` callable) turn a
        recorded trial (default: the scope's latest) into learnings merged into ``scope``."""
        return reflect.reflect(self._store, scope, llm, trial_id=trial_id, goal=goal)

    def reflection_prompt(
        self, scope: Scope, *, trial_id: int | None = None, goal: str | None = None
    ) -> tuple[int, float | None, list[dict[str, str]]]:
        """(trial id, score, system and user messages) of the reflection ``reflect`` would
        ask for; for an LLM that answers elsewhere, whose text is then passed to ``reflect``
        as ``llm=lambda _: text``."""
        return reflect.prompt_for(self._store, scope, trial_id=trial_id, goal=goal)

    def reflection_input(self, scope: Scope, trial_id: int, **context: Any) -> ReflectionInput:
        """What a reflection on ``trial_id`` is shown, for an agent that sends the prompt
        itself (``clin.agent``); ``context``: the keywords of ``reflect.gather`` (goal, score,
        outcome, rooms, ...)."""
        return reflect.gather(self._store, scope, trial_id, **context)

    def learnings(
        self, scope: Scope, *, include_retired: bool = False, limit: int | None = None
    ) -> list[Learning]:
        """Learnings stored at ``scope`` or narrower (a ``None`` field matches any value),
        by scope then id: what a scope holds, where ``recall`` is what applies to it."""
        return recall.stored(self._store, scope, include_retired=include_retired, limit=limit)

    def render(
        self,
        scope: Scope,
        query: str | None = None,
        *,
        budget_tokens: int | None = None,
        k: int | None = None,
    ) -> RenderedMemory:
        """``recall`` then ``memory.render``: a numbered prompt block within the budget."""
        return render(self.recall(scope, query, k), budget_tokens)
