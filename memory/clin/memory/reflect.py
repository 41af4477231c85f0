"""Reflection, one core for the CLIN agent and for any agent using the library: after a
trial an LLM reads the trial, the earlier trials' scores and learnings, and the current
memory, and writes causal abstractions that are merged with support and history.

What lives here: the input (``ReflectionInput``, read from the database by ``gather``), the
trial compressed into a token budget (``compress_trace``), the prompt (``build_messages``,
templates ``prompts/reflect_system.j2`` / ``prompts/reflect_user.j2``), the answer's JSON
schema (``reflection_schema``, generated from ``ReflectionAnswer``); answers are parsed by
``abstractions.parse_learnings``, the one parser of every text that holds learnings. The agent's adapter (``clin.reflection``) adds its chat backend and
structured output; ``reflect`` below is the library's entry point, for a langchain-core
chat model or a plain ``str -> str`` callable (langchain is never imported here).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from clin import prompts

from . import learnings, recall, runs
from .abstractions import FORMS_PATTERN, VERBS, Abstraction, ParseReport, parse_learnings
from .db import Database
from .errors import MemoryStoreError, ReflectionError
from .learnings import ORIGINS, Learning, Origin, ReflectionOutcome
from .render import clip, estimate_tokens, within_budget
from .scope import Scope

MAX_LEARNINGS = 12
TRACE_TOKENS = 3000  # the compressed attempt; the whole prompt adds memory and past trials
PAST_TRIALS = 3  # as the paper's memory generator: the last three trials' learnings
MEMORY_TOKENS = 800  # the current learnings shown (most useful first, as recall orders them)
ANSWER_TOKENS = 600
LLM = Any  # a langchain-core BaseChatModel (or any Runnable) | Callable[[str], str]


class TraceStep(BaseModel):
    """One step of the attempt as reflection sees it."""

    idx: int
    action: str
    observation: str = ""
    reward: float | None = None
    score: float | None = None  # the task score after the step


class PastTrial(BaseModel):
    idx: int
    score: float | None = None
    learnings: list[str] = Field(default_factory=list)


class MemoryLine(BaseModel):
    text: str
    support: int = 1
    mean_score: float | None = None
    origin: Origin = "own"  # see ``learnings.origin``


class ReflectionInput(BaseModel):
    """Everything one reflection is shown."""

    goal: str = ""
    steps: list[TraceStep] = Field(default_factory=list)
    score: float | None = None
    outcome: str | None = None  # success | failed | incomplete (the agent says which)
    trial: int | None = None
    rooms: list[str] = Field(default_factory=list)  # first full view of each room, if known
    # a regex whose first group names the room a full view describes (the environment's;
    # None: views are not told apart by room)
    room_pattern: str | None = None
    past: list[PastTrial] = Field(default_factory=list)
    memory: list[MemoryLine] = Field(default_factory=list)
    max_learnings: int = MAX_LEARNINGS


def for_backends(schema: dict[str, Any]) -> None:
    """``json_schema_extra`` of output models: backends get the shape only, without the
    model's docstring or defaults (every field is required in what the LLM writes)."""
    schema.pop("description", None)
    for prop in schema.get("properties", {}).values():
        prop.pop("default", None)


LearningLine = Annotated[
    str,
    StringConstraints(
        pattern=f"^[A-Za-z][a-z0-9 ,'-]{{3,80}} {FORMS_PATTERN} to [a-z0-9][a-z0-9 ,'-]{{3,80}}$",
        max_length=200,
    ),
]


class ReflectionAnswer(BaseModel):
    """What a reflection answers, as structured output: every line is one of the four forms
    (a backend that enforces the schema cannot write anything else)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=for_backends)

    learnings: list[LearningLine] = Field(min_length=1, max_length=MAX_LEARNINGS)


def reflection_schema() -> dict[str, Any]:
    """The JSON schema schema-enforcing backends receive (llama.cpp grammar, OpenAI
    structured output), generated from ``ReflectionAnswer``."""
    return ReflectionAnswer.model_json_schema()


# ---------------------------------------------------------------- the attempt, compressed
_FOUND = re.compile(
    r"\b(?:in it,? you see|you see|inside (?:the|it)|contains|containing|there is|there are|"
    r"on (?:the|it) (?:is|are))\b",
    re.IGNORECASE,
)


class _Level(BaseModel):
    plain: int  # characters kept of an ordinary observation (0: left out)
    found: int  # ... of one that says what is where ("In it, you see ...")
    room: int  # ... of the first full view of a room


_LEVELS = [
    _Level(plain=200, found=500, room=2000),
    _Level(plain=120, found=300, room=2000),
    _Level(plain=60, found=200, room=1200),
    _Level(plain=0, found=120, room=800),
    _Level(plain=0, found=60, room=400),
    _Level(plain=0, found=0, room=200),
]


@lru_cache(maxsize=16)
def _room_regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


def room_of(view: str, pattern: str | None) -> str | None:
    """The room a full view describes, by the environment's ``pattern`` (its first group
    names the room), lower-cased; None without a pattern or a match."""
    if not pattern:
        return None
    m = _room_regex(pattern).match(view)
    return m.group(1).strip().lower() if m else None


def _first_views(steps: Sequence[TraceStep], rooms: Sequence[str],
                 pattern: str | None) -> list[tuple[str, str]]:
    """(room, text) of the first full view of each room: the caller's views first, then the
    views the attempt's own observations gave, in order of appearance."""
    views: dict[str, str] = {}
    for text in [*rooms, *(s.observation for s in steps)]:
        flat = " ".join(str(text).split())
        name = room_of(flat, pattern)
        if name is not None and name not in views:
            views[name] = flat
    return list(views.items())


def _render(steps: Sequence[TraceStep], views: list[tuple[str, str]], lvl: _Level,
            pattern: str | None) -> tuple[list[str], list[str]]:
    first = dict(views)
    room_lines = [clip(text, lvl.room) for _, text in views]
    seen: dict[str, int] = {}
    lines: list[str] = []
    i = 0
    while i < len(steps):
        s = steps[i]
        obs = " ".join(s.observation.split())
        j = i  # a run of the same action with the same answer is one line
        while (j + 1 < len(steps) and steps[j + 1].action == s.action
               and " ".join(steps[j + 1].observation.split()) == obs and not steps[j + 1].reward):
            j += 1
        name = room_of(obs, pattern)
        if name is not None and first.get(name) == obs:
            shown = f"(the {name}: see ROOMS SEEN)"
        elif obs in seen:
            shown = f"(same as step {seen[obs]})" if lvl.plain or lvl.found else ""
        elif any(t.reward for t in steps[i : j + 1]):  # what changed the score stays readable
            shown = clip(obs, max(lvl.found, 120))
        elif name is not None or _FOUND.search(obs):  # what is where (a room seen again too)
            shown = clip(obs, lvl.found)
        else:
            shown = clip(obs, lvl.plain)
        seen.setdefault(obs, s.idx)
        head = f"{s.idx}." if j == i else f"{s.idx}-{steps[j].idx}."
        line = f"{head} > {s.action}" + (f" (x{j - i + 1})" if j > i else "")
        if shown:
            line += f" -> {shown}"
        reward = sum(float(t.reward or 0) for t in steps[i : j + 1])
        if reward:
            after = steps[j].score
            line += f" [score {reward:+g}" + (f" -> {after:g}]" if after is not None else "]")
        lines.append(line)
        i = j + 1
    return room_lines, lines


def compress_trace(
    steps: Sequence[TraceStep], rooms: Sequence[str] = (), budget_tokens: int = TRACE_TOKENS,
    room_pattern: str | None = None,
) -> tuple[list[str], list[str], bool]:
    """The attempt inside ``budget_tokens``: every action and every score change stay, as
    does the first full view of each room; what is shortened first is ordinary observations,
    then what was found where, then the room views. Repeats become "(same as step N)" and
    runs of one action with one answer become one line. Returns (room views, step lines,
    whether anything was shortened below the first level). ``room_pattern``: see
    ``ReflectionInput``."""
    views = _first_views(steps, rooms, room_pattern)
    n, room_lines, lines = 0, [], []
    for n, lvl in enumerate(_LEVELS):
        room_lines, lines = _render(steps, views, lvl, room_pattern)
        cost = sum(estimate_tokens(x) + 1 for x in [*room_lines, *lines])
        if cost <= budget_tokens:
            break
    return room_lines, lines, n > 0


# ---------------------------------------------------------------- the prompt
_GOAL_LEAD = re.compile(r"^\s*(?:your\s+)?task\s*(?:is\s*)?(?:to\s*)?:?\s*", re.IGNORECASE)


def example_learning(inp: ReflectionInput) -> str | None:
    """A learning in the right form built from this attempt, for the prompt to show: the
    first action that raised the score MAY BE NECESSARY to the goal's first sentence. Small
    models copy the shape of what they are shown; an example from their own attempt makes
    them write short sentences about it (bench/RESULTS.md, "Demo learnings"). None when no
    step raised the score or there is no goal. Shown last, where the demo model reads it
    best."""
    goal = _GOAL_LEAD.sub("", inp.goal.split(".")[0]).strip()
    prev = 0.0
    for st in inp.steps:
        if st.score is not None and st.score > prev and goal:
            try:
                return Abstraction(cause=st.action.strip(), effect=goal, relation="necessary",
                                   confidence="may").text
            except ValueError:  # an empty or over-long side
                return None
        if st.score is not None:
            prev = st.score
    return None


def build_messages(
    inp: ReflectionInput, *, structured: bool = False, budget_tokens: int = TRACE_TOKENS
) -> list[dict[str, str]]:
    """System and user messages (``{"role", "content"}``) for one reflection."""
    room_lines, lines, shortened = compress_trace(inp.steps, inp.rooms, budget_tokens,
                                                  inp.room_pattern)
    memory = within_budget(inp.memory, lambda m: estimate_tokens(m.text) + 8, MEMORY_TOKENS)
    system = prompts.render(
        "reflect_system", max_learnings=inp.max_learnings, structured=structured, forms=VERBS,
    )
    user = prompts.render(
        "reflect_user",
        goal=inp.goal, past=inp.past, memory=memory, rooms=room_lines, lines=lines,
        steps=len(inp.steps), shortened=shortened, trial=inp.trial, score=inp.score,
        outcome=inp.outcome, structured=structured, example=example_learning(inp),
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def as_text(messages: Sequence[dict[str, str]]) -> str:
    """The messages as one prompt, for LLMs that take a string."""
    return "\n\n".join(m["content"] for m in messages)


# ---------------------------------------------------------------- from the database
def gather(
    db: Database,
    scope: Scope,
    trial_id: int,
    *,
    goal: str = "",
    score: float | None = None,
    outcome: str | None = None,
    trial: int | None = None,
    rooms: Sequence[str] = (),
    room_pattern: str | None = None,
    max_learnings: int = MAX_LEARNINGS,
    origin: Callable[[Learning], Origin] | None = None,
) -> ReflectionInput:
    """The reflection input for ``trial_id``: its steps as recorded, the last
    ``PAST_TRIALS`` completed trials of the scope before it with their scores and the
    learnings each one's reflection wrote, and the memory ``recall`` gives with support
    (``origin`` says which learnings are inherited, shown under their own headings)."""
    steps = [TraceStep(idx=r["idx"], action=str(r["action"]),
                       observation=str(r["observation"] or ""), reward=r["reward"],
                       score=r.get("score"))
             for r in runs.trial_steps(db.conn, trial_id)]
    past = [PastTrial(idx=t["idx"], score=t["score"],
                      learnings=learnings.texts_written_by(db.conn, t["id"])[:max_learnings])
            for t in runs.earlier_trials(db.conn, scope, trial_id, PAST_TRIALS)]
    if len({p.idx for p in past}) < len(past):  # trials of several runs: number them afresh
        past = [p.model_copy(update={"idx": n}) for n, p in enumerate(past, 1)]
    memory = [MemoryLine(text=x.text, support=x.support, mean_score=x.mean_score,
                         origin=origin(x) if origin else "own")
              for x in recall.recall(db, scope)]
    memory.sort(key=lambda m: ORIGINS.index(m.origin))  # stable
    return ReflectionInput(goal=goal, steps=steps, score=score, outcome=outcome, trial=trial,
                           rooms=list(rooms), room_pattern=room_pattern, past=past,
                           memory=memory,
                           max_learnings=max_learnings)


# ---------------------------------------------------------------- the library's LLMs
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


def complete(llm: LLM, messages: Sequence[dict[str, str]]) -> str:
    """Ask ``llm`` once with the prompt as one string (a chat model's ``invoke`` reads it as
    one user message; any Runnable taking a string works). Its failures become ``ReflectionError``
    (cause chained), so the caller sees one error type whatever backend it passed in."""
    check_llm(llm)
    invoke: Callable[[Any], Any] | None = getattr(llm, "invoke", None)
    try:
        prompt = as_text(messages)
        answer = invoke(prompt) if callable(invoke) else llm(prompt)
    except MemoryStoreError:
        raise
    except Exception as exc:  # any backend's error, re-raised typed and chained
        raise ReflectionError(f"the reflection LLM failed: {type(exc).__name__}: {exc}") from exc
    return text_of(answer)


def require_learnings(report: ParseReport) -> None:
    """An answer with none of the four forms is a failed reflection, never an empty one."""
    if not report.accepted:
        first = report.rejected[0] if report.rejected else "(empty answer)"
        raise ReflectionError(
            f"the reflection held none of the four causal forms ({len(report.rejected)} "
            f"lines rejected, first: {first[:120]!r}); memory left unchanged"
        )


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


def prompt_for(
    db: Database,
    scope: Scope,
    *,
    trial_id: int | None = None,
    goal: str | None = None,
    max_learnings: int = MAX_LEARNINGS,
) -> tuple[int, float | None, list[dict[str, str]]]:
    """(trial id, score, messages) of the reflection ``reflect`` would ask for, without
    asking: for callers whose LLM answers elsewhere (an MCP client's model through sampling).
    Raises ``ReflectionError`` for a missing or already reflected trial."""
    tid, score = _trial(db, scope, trial_id)
    _not_reflected_yet(db, tid)  # before paying for the LLM call
    inp = gather(db, scope, tid, goal=goal or "", score=score, max_learnings=max_learnings)
    return tid, score, build_messages(inp)


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
    tid, score, messages = prompt_for(db, scope, trial_id=trial_id, goal=goal,
                                      max_learnings=max_learnings)
    prompt = as_text(messages)
    t0 = time.perf_counter()
    error: str | None = None
    text = ""
    try:
        text = complete(llm, messages)
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
    require_learnings(report)
    with db.transaction() as conn:
        _not_reflected_yet(db, tid)  # again inside the write lock: a concurrent reflect
        outcome = learnings.merge_reflection(conn, scope, report, trial_id=tid, score=score)
        runs.count_reflection(conn, tid, outcome.written, outcome.rejected)
    return outcome
