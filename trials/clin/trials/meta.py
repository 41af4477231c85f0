"""Meta-memory: what earlier episodes learned, summarized by the LLM into the four causal forms
and stored at a broader scope, where later episodes' recall finds it as an ancestor.

GEN-ENV stores it at the task scope (variation NULL), GEN-TASK at the environment scope
(task NULL). Each meta-memory records which trial of which episode fed it (``meta_sources``,
with the LLM call that summarized it) and which learnings it wrote (``meta_learnings``).

GEN-ENV summarizes all training episodes of the task in one call. GEN-TASK asks once per
source task for what transfers to the new task (where objects are, how rooms connect, what
tools do), each answer kept within ``meta_tokens_per_task``, so one task's episodes are not
squeezed with all the others' into a dozen generic lines.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from clin import prompts
from clin.llm.base import ChatLLM, Completion, Message, purpose
from clin.memory import Memory, ParseReport, Scope, estimate_tokens, parse_learnings
from clin.memory.abstractions import VERBS
from clin.memory.db import inserted_id, now
from clin.memory.render import within_budget
from clin.reflection import MAX_LEARNINGS, reflection_schema

from . import evaldb
from .protocols import EvalConfig, MetaPlan


class MetaSource(BaseModel):
    """The best trial of one source episode and the learnings its reflection wrote."""

    episode_id: int
    run_id: int
    trial_id: int
    task: str
    variation: int
    score: float
    learnings: list[str]


class MetaResult(BaseModel):
    key: str
    meta_id: int
    sources: int
    written: int
    rejected: int
    skipped: bool = False  # already built (resume)


def best_sources(mem: Memory, eval_id: int, episode_keys: list[str]) -> list[MetaSource]:
    """Per episode, its best completed trial (ties: the later, whose memory is more refined)
    and the learnings as that trial's reflection left them."""
    out: list[MetaSource] = []
    for key in episode_keys:
        ep = evaldb.episode(mem, eval_id, key)
        if ep.run_id is None:
            continue
        best = mem.best_trial(ep.run_id)
        if best is None:
            continue
        out.append(MetaSource(episode_id=ep.id, run_id=ep.run_id, trial_id=best["id"],
                              task=ep.task, variation=ep.variation, score=best["score"] or 0.0,
                              learnings=mem.learnings_written_by(best["id"])))
    return out


def build_messages(mode: str, target: str, sources: list[MetaSource],
                   structured: bool, max_learnings: int = MAX_LEARNINGS) -> list[Message]:
    system = prompts.render("meta_memory_system", mode=mode, max_learnings=max_learnings,
                            structured=structured, forms=VERBS)
    user = prompts.render("meta_memory_user", mode=mode, target=target, sources=sources)
    return [Message(role="system", content=system), Message(role="user", content=user)]


def build_meta(
    *, mem: Memory, llm: ChatLLM, eval_id: int, cfg: EvalConfig, meta: MetaPlan, target: str,
    env_name: str | None,
) -> MetaResult:
    """Summarize the sources of ``meta`` and store the result at ``meta.scope``; idempotent:
    a meta-memory already ``done`` is not rebuilt."""
    row = _meta_row(mem, eval_id, meta.key)
    if row is not None and row["status"] == "done":
        return MetaResult(key=meta.key, meta_id=row["id"], sources=0,
                          written=row["learnings_written"] or 0,
                          rejected=row["learnings_rejected"] or 0, skipped=True)
    scope = meta.scope(cfg.agent, env_name)
    sources = best_sources(mem, eval_id, meta.source_keys)
    if cfg.protocol == "gen-task":
        report, calls = _per_source_task(mem, llm, target, sources, cfg.meta_tokens_per_task)
        call_id = None  # one call per source task: see meta_sources.llm_call_id
    else:
        report, call_id = _summarize(mem, llm, cfg.protocol, target, sources, MAX_LEARNINGS)
        calls = {s.task: call_id for s in sources}
    meta_id = row["id"] if row is not None else _insert_meta(mem, eval_id, meta.key, scope)
    score = sum(s.score for s in sources) / len(sources) if sources else None
    outcome = mem.apply_reflection(scope, report, score=score)
    ids = mem.learning_ids(scope, [a.key for a in report.accepted])
    with mem.transaction() as conn:
        conn.execute("DELETE FROM meta_sources WHERE meta_id = ?", [meta_id])
        conn.execute("DELETE FROM meta_learnings WHERE meta_id = ?", [meta_id])
        for s in sources:
            conn.execute(
                "INSERT INTO meta_sources (meta_id, source_episode_id, source_run_id, "
                "source_trial_id, source_task, source_variation, source_score, llm_call_id) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [meta_id, s.episode_id, s.run_id, s.trial_id, s.task, s.variation, s.score,
                 calls.get(s.task)])
        conn.executemany("INSERT OR IGNORE INTO meta_learnings (meta_id, learning_id) "
                         "VALUES (?, ?)", [(meta_id, i) for i in ids])
        conn.execute(
            "UPDATE meta_memories SET status = 'done', llm_call_id = ?, learnings_written = ?, "
            "learnings_rejected = ? WHERE id = ?",
            [call_id, outcome.written, outcome.rejected, meta_id])
    return MetaResult(key=meta.key, meta_id=meta_id, sources=len(sources),
                      written=outcome.written, rejected=outcome.rejected)


def _summarize(mem: Memory, llm: ChatLLM, mode: str, target: str, sources: list[MetaSource],
               max_learnings: int) -> tuple[ParseReport, int | None]:
    """One LLM call over ``sources``; (parsed answer, llm_calls id), no call without learnings."""
    if not any(s.learnings for s in sources):
        return ParseReport(), None
    structured = bool(getattr(llm, "enforces_schema", False))
    messages = build_messages(mode, target, sources, structured, max_learnings)
    with purpose("meta"):
        completion = llm.complete(messages, json_schema=reflection_schema() if structured
                                  else None, max_tokens=600)
    return parse_learnings(completion.text), _record_call(mem, messages, completion)


def _per_source_task(mem: Memory, llm: ChatLLM, target: str, sources: list[MetaSource],
                     budget_tokens: int) -> tuple[ParseReport, dict[str, int | None]]:
    """GEN-TASK: one summary per source task, each within ``budget_tokens``, merged (the
    first wording of a learning two tasks share is kept)."""
    by_task: dict[str, list[MetaSource]] = {}
    for s in sources:
        by_task.setdefault(s.task, []).append(s)
    merged = ParseReport()
    calls: dict[str, int | None] = {}
    seen: set[str] = set()
    max_lines = max(2, budget_tokens // 16)  # a learning is about 12-20 tokens
    for task, group in by_task.items():
        part, calls[task] = _summarize(mem, llm, "gen-task", target, group, max_lines)
        merged.rejected += part.rejected
        for ab in within_budget(part.accepted, lambda ab: estimate_tokens(ab.text) + 1,
                                budget_tokens):
            if ab.key not in seen:
                seen.add(ab.key)
                merged.accepted.append(ab)
    return merged, calls


def _meta_row(mem: Memory, eval_id: int, key: str) -> dict[str, Any] | None:
    rows = list(mem.db.query("SELECT * FROM meta_memories WHERE eval_id = ? AND key = ?",
                             [eval_id, key]))
    return rows[0] if rows else None


def _insert_meta(mem: Memory, eval_id: int, key: str, scope: Scope) -> int:
    with mem.transaction() as conn:
        cur = conn.execute(
            "INSERT INTO meta_memories (eval_id, key, namespace, agent, env, task, variation, "
            "status, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'building', ?)",
            [eval_id, key, scope.namespace, scope.agent, scope.env, scope.task,
             scope.variation, now()])
        return inserted_id(cur)


def _record_call(mem: Memory, messages: list[Message], c: Completion) -> int:
    return mem.add_llm_call(
        purpose="meta", model=c.model, prompt_tokens=c.prompt_tokens,
        completion_tokens=c.completion_tokens, latency_ms=c.latency_ms, attempts=c.attempts,
        prompt="\n\n".join(f"[{m.role}]\n{m.content}" for m in messages), response=c.text)
