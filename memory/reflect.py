"""Reflection for any agent: an LLM reads a recorded trial and the scope's current learnings
and writes updated causal abstractions, which are merged with support and history.

The LLM is either a langchain-core chat model (anything with ``invoke``; langchain is never
imported here) or a plain ``str -> str`` callable, so the library has no LLM dependency of
its own. The prompt lives in ``memory/reflect.j2``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from . import learnings, runs
from .abstractions import parse_learnings
from .db import Database
from .errors import MemoryStoreError, ReflectionError
from .learnings import ReflectionOutcome
from .render import estimate_tokens
from .scope import Scope

MAX_LEARNINGS = 12
TRACE_TOKENS = 2500
OBSERVATION_CHARS = 200
LLM = Any  # a langchain-core BaseChatModel (or any Runnable) | Callable[[str], str]


@lru_cache(maxsize=1)
def _template() -> jinja2.Template:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(__file__).parent)),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        autoescape=False,
    )
    return env.get_template("reflect.j2")


def build_prompt(
    *,
    steps: Sequence[dict[str, Any]],
    score: float | None,
    previous: Sequence[str],
    goal: str | None = None,
    max_learnings: int = MAX_LEARNINGS,
    budget_tokens: int = TRACE_TOKENS,
) -> str:
    """The reflection prompt. Observations are clipped and the oldest steps dropped first
    to fit ``budget_tokens``: the end of an attempt says most about why it failed."""
    clipped = [
        {**s, "observation": " ".join(str(s.get("observation") or "").split())[:OBSERVATION_CHARS],
         "reward": s.get("reward")}
        for s in steps
    ]
    kept: list[dict[str, Any]] = []
    used = 0
    for s in reversed(clipped):
        used += estimate_tokens(str(s["action"])) + estimate_tokens(s["observation"]) + 6
        if used > budget_tokens:
            break
        kept.append(s)
    kept.reverse()
    return _template().render(
        steps=kept, omitted=len(steps) - len(kept), score=score, previous=list(previous),
        goal=goal, max_learnings=max_learnings,
    ).strip()


def text_of(answer: Any) -> str:
    """The text of an LLM answer: a string, or a message whose ``content`` is a string or a
    list of content blocks (as langchain chat models return)."""
    if isinstance(answer, str):
        return answer
    content = getattr(answer, "content", None)
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [b if isinstance(b, str) else b.get("text", "") for b in content
                 if isinstance(b, (str, dict))]
        return "".join(parts)
    raise ReflectionError(f"the reflection LLM returned {type(answer).__name__}, not text")


def llm_name(llm: LLM) -> str:
    for attr in ("model_name", "model"):
        value = getattr(llm, attr, None)
        if isinstance(value, str):
            return value
    return getattr(llm, "__name__", None) or type(llm).__name__


def check_llm(llm: LLM) -> None:
    if not callable(getattr(llm, "invoke", None)) and not callable(llm):
        raise TypeError("llm must be a langchain-core chat model or a callable str -> str")


def complete(llm: LLM, prompt: str) -> str:
    """Ask ``llm`` once. Its failures become ``ReflectionError`` (cause chained), so the
    caller sees one error type whatever backend it passed in."""
    check_llm(llm)
    invoke: Callable[[str], Any] | None = getattr(llm, "invoke", None)
    try:
        answer = invoke(prompt) if callable(invoke) else llm(prompt)
    except MemoryStoreError:
        raise
    except Exception as exc:  # any backend's error, re-raised typed and chained
        raise ReflectionError(f"the reflection LLM failed: {type(exc).__name__}: {exc}") from exc
    return text_of(answer)


def _trial(db: Database, scope: Scope, trial_id: int | None) -> tuple[int, float | None]:
    found = runs.scored_trial(db.conn, scope, trial_id)
    if found is None and trial_id is None:
        raise ReflectionError(f"no completed trial recorded for {scope!r}: call record_trial first")
    if found is None:
        raise ReflectionError(f"trial {trial_id} does not exist in {scope!r}")
    return found


def _not_reflected_yet(db: Database, trial_id: int) -> None:
    """A second merge of one trial would count its support twice."""
    if learnings.already_reflected(db.conn, trial_id):
        raise ReflectionError(
            f"trial {trial_id} was already reflected on; record a new trial to reflect again"
        )


def reflect(
    db: Database,
    scope: Scope,
    llm: LLM,
    *,
    trial_id: int | None = None,
    goal: str | None = None,
    max_learnings: int = MAX_LEARNINGS,
) -> ReflectionOutcome:
    """Reflect on ``trial_id`` (default: the scope's latest completed trial) and merge the
    learnings into ``scope``. An answer with none of the four forms raises
    ``ReflectionError`` and leaves the memory unchanged: a failed write is never silent."""
    check_llm(llm)
    tid, score = _trial(db, scope, trial_id)
    _not_reflected_yet(db, tid)  # before paying for the LLM call
    steps = runs.trial_steps(db.conn, tid)
    previous = learnings.active_texts(db.conn, scope)
    prompt = build_prompt(steps=steps, score=score, previous=previous, goal=goal,
                          max_learnings=max_learnings)
    t0 = time.perf_counter()
    error: str | None = None
    text = ""
    try:
        text = complete(llm, prompt)
    except ReflectionError as exc:
        error = str(exc)
        raise
    finally:
        runs.add_llm_call(
            db, purpose="reflection", model=llm_name(llm), prompt_tokens=estimate_tokens(prompt),
            completion_tokens=estimate_tokens(text), latency_ms=(time.perf_counter() - t0) * 1e3,
            attempts=1, trial_id=tid, prompt=prompt, response=text, error=error,
        )
    report = parse_learnings(text)
    if not report.accepted:
        first = report.rejected[0] if report.rejected else "(empty answer)"
        raise ReflectionError(
            f"the reflection held none of the four causal forms ({len(report.rejected)} "
            f"lines rejected, first: {first[:120]!r}); memory left unchanged"
        )
    with db.transaction() as conn:
        _not_reflected_yet(db, tid)  # again inside the write lock: a concurrent reflect
        outcome = learnings.merge_reflection(conn, scope, report, trial_id=tid, score=score)
        runs.count_reflection(conn, tid, outcome.written, outcome.rejected)
    return outcome
