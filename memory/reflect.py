"""Reflection for any agent: an LLM reads a recorded trial and the scope's current learnings
and writes updated causal abstractions, which are merged with support and history.

The LLM is either a langchain-core chat model (anything with ``invoke``; langchain is never
imported here) or a plain ``str -> str`` callable, so the library has no LLM dependency of
its own. The prompt lives in ``memory/reflect.j2``.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2

from .abstractions import parse_learnings
from .errors import MemoryStoreError, ReflectionError
from .render import estimate_tokens
from .scope import Scope

if TYPE_CHECKING:
    from .store import Memory, ReflectionOutcome

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


def _trial(mem: Memory, scope: Scope, trial_id: int | None) -> tuple[int, float | None]:
    where, params = scope.exact_filter()
    if trial_id is None:
        row = mem.conn.execute(
            f"SELECT id, score FROM trials WHERE {where} AND status = 'completed' "
            "ORDER BY id DESC LIMIT 1", params,
        ).fetchone()
        if row is None:
            raise ReflectionError(
                f"no completed trial recorded for {scope!r}: call record_trial first"
            )
        return int(row[0]), row[1]
    row = mem.conn.execute(
        f"SELECT id, score FROM trials WHERE id = ? AND {where}", [trial_id, *params]
    ).fetchone()
    if row is None:
        raise ReflectionError(f"trial {trial_id} does not exist in {scope!r}")
    return int(row[0]), row[1]


def _not_reflected_yet(conn: sqlite3.Connection, trial_id: int) -> None:
    """A second merge of one trial would count its support twice."""
    if conn.execute("SELECT 1 FROM learning_events WHERE trial_id = ? LIMIT 1",
                    [trial_id]).fetchone():
        raise ReflectionError(
            f"trial {trial_id} was already reflected on; record a new trial to reflect again"
        )


def reflect(
    mem: Memory,
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
    tid, score = _trial(mem, scope, trial_id)
    _not_reflected_yet(mem.conn, tid)  # before paying for the LLM call
    steps = [
        {"idx": r[0], "action": r[1], "observation": r[2], "reward": r[3]}
        for r in mem.conn.execute(
            "SELECT idx, action, observation, reward FROM steps WHERE trial_id = ? ORDER BY idx",
            [tid],
        )
    ]
    where, params = scope.exact_filter()
    previous = [r[0] for r in mem.conn.execute(
        f"SELECT text FROM learnings WHERE {where} AND status = 'active' "
        "ORDER BY confidence = 'should' DESC, support DESC, id", params,
    )]
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
        mem.add_llm_call(
            purpose="reflection", model=llm_name(llm), prompt_tokens=estimate_tokens(prompt),
            completion_tokens=estimate_tokens(text), latency_ms=(time.perf_counter() - t0) * 1e3,
            trial_id=tid, prompt=prompt, response=text, error=error,
        )
    report = parse_learnings(text)
    if not report.accepted:
        first = report.rejected[0] if report.rejected else "(empty answer)"
        raise ReflectionError(
            f"the reflection held none of the four causal forms ({len(report.rejected)} "
            f"lines rejected, first: {first[:120]!r}); memory left unchanged"
        )
    with mem.transaction() as conn:
        _not_reflected_yet(conn, tid)  # again inside the write lock: a concurrent reflect
        outcome = mem._apply_reflection(conn, scope, tid, report, score)
        conn.execute(
            "UPDATE trials SET learnings_written = ifnull(learnings_written, 0) + ?, "
            "learnings_rejected = ifnull(learnings_rejected, 0) + ? WHERE id = ?",
            [outcome.written, outcome.rejected, tid],
        )
    return outcome
