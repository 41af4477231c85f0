"""The memory as a Model Context Protocol server (extra ``mcp``), for agents that are not
Python programs: desktop and IDE assistants, agents in other languages. ``clin mcp`` runs it.

Tools (typed input and structured output, from the pydantic models below): ``record_trial``,
``reflect``, ``recall``, ``render``, ``add_learning``, ``list_learnings``,
``learning_history``; resources ``clin://learnings/{namespace}/{agent}`` (and ``/{task}``)
expose what a scope holds, read-only.

Reflection needs an LLM. The client's own model answers through MCP sampling when the
client offers it (the SDK's ``Sample`` resolver: a server-to-client request on handshake
connections, an input-required round on 2026-07-28 ones); otherwise the ``llm_factory``
the caller passed (``clin mcp --model``); otherwise the call fails with one clear message.
This module imports only ``memory`` and the SDK: the CLI builds the fallback LLM.

Memory errors come back as tool errors (``is_error``) carrying the CLI's one-line message.
Tool bodies run on the SDK's worker threads; one lock keeps the shared connection to one
call at a time (calls take milliseconds), and a reflection through ``llm_factory`` opens its
own connection so the LLM's seconds never hold that lock.
"""

# No ``from __future__ import annotations``: the SDK reads the tools' annotations at
# registration, and ``reflect``'s names a resolver local to ``MemoryServer._build``.
import functools
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from mcp.server.mcpserver import Context, MCPServer, Resolve, Sample
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import (
    CallToolResult,
    CreateMessageResult,
    InputRequiredResult,
    SamplingMessage,
    TextContent,
)
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .abstractions import VERBS
from .errors import MemoryStoreError, ReflectionError
from .learnings import Learning
from .reflect import ANSWER_TOKENS, LLM
from .scope import Scope
from .store import Memory

DEFAULT_AGENT: str = Scope.model_fields["agent"].default
RECALL_K = 10
LIST_LIMIT = 500
HTTP_HOST = "127.0.0.1"  # the HTTP transport never listens beyond this machine
NO_LLM = ("reflection needs an LLM: this client does not offer MCP sampling and the server "
          "was started without --model; start it with --model SPEC or use a client that "
          "supports sampling")
Transport = Literal["stdio", "http"]
T = TypeVar("T")
# A row id: what SQLite's INTEGER holds (a larger int is refused as an argument, not a crash).
RowId = Annotated[int, Field(ge=1, le=2**63 - 1)]


# ---------------------------------------------------------------- tool inputs and outputs
class ScopeIn(BaseModel):
    """Where learnings apply. A missing env, task or variation means "any": learnings stored
    there apply to every narrower scope. A missing namespace is the server's ``--namespace``,
    a missing agent is "clin"."""

    model_config = ConfigDict(extra="forbid")

    namespace: str | None = None
    agent: str | None = None
    env: str | None = None
    task: str | None = None
    variation: str | None = None


class Step(BaseModel):
    """One step of an attempt: what the agent did and what it saw."""

    model_config = ConfigDict(extra="forbid")

    action: str = Field(min_length=1)
    observation: str = ""


class TrialRecorded(BaseModel):
    trial_id: int
    steps: int


class Reflected(BaseModel):
    """What the reflection did to the scope's memory."""

    llm: str = Field(description="who reflected: the client's model (sampling) or --model")
    added: int
    kept: int
    promoted: int
    demoted: int
    retired: int
    rejected: int


class LearningOut(BaseModel):
    id: int
    text: str
    relation: str
    confidence: str
    support: int
    mean_score: float | None = None
    env: str | None = None
    task: str | None = None
    variation: str | None = None
    status: str = "active"

    @classmethod
    def of(cls, lr: Learning) -> "LearningOut":
        return cls(id=lr.id, text=lr.text, relation=lr.relation, confidence=lr.confidence,
                   support=lr.support, mean_score=lr.mean_score, env=lr.env, task=lr.task,
                   variation=lr.variation, status=lr.status)


class Learnings(BaseModel):
    learnings: list[LearningOut]


class Rendered(BaseModel):
    """The numbered block to put in a prompt; ``ids[n - 1]`` is the learning shown as [n]."""

    text: str
    ids: list[int]


class Added(BaseModel):
    id: int
    text: str
    status: Literal["added", "known", "revived"]
    retired_ids: list[int] = Field(default_factory=list)


class Event(BaseModel):
    event: str
    confidence: str | None = None
    text: str | None = None
    score: float | None = None
    trial_id: int | None = None
    run_id: int | None = None
    created_at: str | None = None


class History(BaseModel):
    learning_id: int
    events: list[Event]


# ---------------------------------------------------------------- the server
@dataclass(frozen=True)
class _Question:
    """The reflection a ``reflect`` call asks the client's model for: the trial is fixed
    when the prompt is built, so the answer is merged into the trial it read."""

    trial_id: int
    system: str
    user: str


class _Answered:
    """The ``str -> str`` LLM ``Memory.reflect`` calls when the client's model already
    answered through sampling: it returns that answer (the prompt is the same one)."""

    def __init__(self, text: str, model: str) -> None:
        self.text = text
        self.model_name = f"mcp-client:{model}"

    def __call__(self, prompt: str) -> str:
        return self.text


def _error(exc: Exception) -> CallToolResult:
    return _error_text(f"error: {exc}")


def _error_text(text: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)


def _tool_errors(fn: Callable[..., T]) -> Callable[..., T]:
    """A memory error (or a value the memory refuses) becomes a tool error with the CLI's
    one-line message; anything else is a bug and stays the SDK's crash report."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (MemoryStoreError, ValueError) as exc:
            return _error(exc)

    return wrapper


def refused_arguments(tool: str, exc: ValidationError) -> str:
    """Arguments that do not match a tool's input schema, as one line."""
    why = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}"
                    for e in exc.errors())
    return " ".join(f"error: bad arguments to {tool}: {why}".split())


class _Server(MCPServer):
    """``MCPServer`` whose refused arguments come back as one line, like every other error
    (the SDK's text is pydantic's multi-line report with a link)."""

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context | None = None
    ) -> CallToolResult | InputRequiredResult:
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            cause = exc.__cause__
            arguments_refused = (  # the SDK's own check of the arguments, nothing deeper
                not isinstance(exc, UnexpectedToolError) and isinstance(cause, ValidationError)
                and str(exc) == f"Error executing tool {name}: {cause}")
            if not arguments_refused or not isinstance(cause, ValidationError):
                raise
            raise ToolError(refused_arguments(name, cause)) from cause


class MemoryServer:
    """One memory file served over MCP. ``llm_factory`` builds the reflection LLM for
    clients without sampling (called once, on the first such reflection)."""

    def __init__(
        self,
        path: str | Path,
        *,
        namespace: str = "default",
        llm_factory: Callable[[], LLM] | None = None,
        llm_label: str | None = None,
    ) -> None:
        self.path = Path(path).resolve()  # what the log shows and --model reflections open
        self.memory = Memory(self.path)
        self.namespace = namespace
        self.llm_factory = llm_factory
        self.llm_label = llm_label or "--model"
        self._lock = threading.Lock()
        self._llm: LLM | None = None
        self._llm_lock = threading.Lock()
        self.mcp = self._build()

    def close(self) -> None:
        with self._lock:
            self.memory.close()

    def scope(self, s: ScopeIn | None) -> Scope:
        s = s or ScopeIn()
        return Scope(namespace=s.namespace or self.namespace, agent=s.agent or DEFAULT_AGENT,
                     env=s.env, task=s.task, variation=s.variation)

    def _with_memory(self, fn: Callable[[Memory], T]) -> T:
        with self._lock:
            return fn(self.memory)

    def _fallback_llm(self) -> LLM:
        with self._llm_lock:
            if self._llm is None:
                assert self.llm_factory is not None
                try:
                    self._llm = self.llm_factory()
                except MemoryStoreError:
                    raise
                except Exception as exc:  # the caller's backend (a missing key, model file...)
                    raise ReflectionError(f"cannot start the reflection LLM "
                                          f"({self.llm_label}): {exc}") from exc
            return self._llm

    def _build(self) -> MCPServer:
        server: MCPServer = _Server(
            "clin-memory",
            instructions=(
                "Causal memory across attempts. After an attempt: record_trial, then reflect "
                f"(writes learnings like 'X {VERBS[0]} to Y'). Before the next: "
                "recall or render for the same scope."
            ),
        )

        @server.tool(structured_output=True)
        @_tool_errors
        def record_trial(
            trace: list[Step],
            score: Annotated[float, Field(description="0..100: how well the attempt did")],
            scope: ScopeIn | None = None,
            completed: bool | None = None,
        ) -> TrialRecorded:
            """Store a finished attempt (its steps and score) so reflect can learn from it."""
            steps = [(s.action, s.observation) for s in trace]
            tid = self._with_memory(
                lambda m: m.record_trial(self.scope(scope), steps, score, completed=completed))
            return TrialRecorded(trial_id=tid, steps=len(steps))

        def question(
            ctx: Context, scope: ScopeIn | None = None, trial_id: int | None = None,
            goal: str | None = None,
        ) -> _Question | str | None:
            """What to ask the client's model, when it offers sampling: the trial (fixed
            here, once per call) and its reflection prompt. A str is an error to report;
            None: use --model."""
            caps = ctx.client_capabilities
            if caps is None or caps.sampling is None:
                return None if self.llm_factory is not None else f"error: {NO_LLM}"
            try:
                tid, _, messages = self._with_memory(lambda m: m.reflection_prompt(
                    self.scope(scope), trial_id=trial_id, goal=goal))
            except MemoryStoreError as exc:
                return f"error: {exc}"
            return _Question(tid, messages[0]["content"], messages[1]["content"])

        def client_answer(
            asked: Annotated[_Question | str | None, Resolve(question)],
        ) -> Sample | str | None:
            """Ask the client's model: the SDK sends the request and injects the answer."""
            if not isinstance(asked, _Question):
                return asked
            return Sample([SamplingMessage(role="user",
                                           content=TextContent(type="text", text=asked.user))],
                          system_prompt=asked.system, max_tokens=ANSWER_TOKENS,
                          temperature=0.0)

        @server.tool(structured_output=True)
        @_tool_errors
        def reflect(
            answer: Annotated[CreateMessageResult | str | None, Resolve(client_answer)],
            asked: Annotated[_Question | str | None, Resolve(question)],
            scope: ScopeIn | None = None,
            trial_id: Annotated[RowId | None, Field(
                description="the trial to learn from (default: the scope's latest)")] = None,
            goal: str | None = None,
        ) -> Reflected:
            """Turn a recorded trial into causal learnings merged into the scope's memory
            (kept ones gain support, MAY is promoted to SHOULD, dropped ones demoted or
            retired). The LLM is the client's own model through sampling, else --model."""
            if isinstance(answer, str):
                return _error_text(answer)  # type: ignore[return-value]
            s = self.scope(scope)
            if answer is not None:
                if not isinstance(answer.content, TextContent):
                    return _error_text(  # type: ignore[return-value]
                        "error: the client's model answered the reflection with "
                        f"{answer.content.type} content, not text")
                assert isinstance(asked, _Question)  # what the answer is about
                llm: LLM = _Answered(answer.content.text, answer.model)
                label = llm.model_name
                out = self._with_memory(  # that trial, though a newer one may be the latest
                    lambda m: m.reflect(s, llm, trial_id=asked.trial_id, goal=goal))
            else:
                llm = self._fallback_llm()
                label = self.llm_label
                with Memory(self.path) as own:  # own connection: the LLM takes seconds
                    out = own.reflect(s, llm, trial_id=trial_id, goal=goal)
            return Reflected(llm=label, **out.model_dump())

        @server.tool(structured_output=True)
        @_tool_errors
        def recall(
            scope: ScopeIn | None = None,
            query: Annotated[str | None, Field(
                description="what the agent is about to do; ranks matching learnings first"
            )] = None,
            k: Annotated[int, Field(ge=0, le=1000)] = RECALL_K,
        ) -> Learnings:
            """The active learnings that apply to the scope (its own and broader ones), most
            specific and most relevant first."""
            found = self._with_memory(lambda m: m.recall(self.scope(scope), query, k))
            return Learnings(learnings=[LearningOut.of(x) for x in found])

        @server.tool(structured_output=True)
        @_tool_errors
        def render(
            scope: ScopeIn | None = None,
            query: str | None = None,
            budget_tokens: Annotated[int | None, Field(ge=1)] = None,
        ) -> Rendered:
            """The learnings that apply as a numbered block for the next prompt, within a
            token budget; cite them by number."""
            r = self._with_memory(
                lambda m: m.render(self.scope(scope), query, budget_tokens=budget_tokens))
            return Rendered(text=r.text, ids=r.ids)

        @server.tool(structured_output=True)
        @_tool_errors
        def add_learning(
            text: Annotated[str, Field(description=(
                "one sentence in a causal form: "
                + " or ".join(", ".join(f"'X {v} to Y'" for v in VERBS).rsplit(", ", 1))
            ))],
            scope: ScopeIn | None = None,
            trial_id: RowId | None = None,
        ) -> Added:
            """Record one learning as it happens, without reflection (support 0 until a
            reflection keeps it). Text in none of the four forms is refused with the reason."""
            r = self._with_memory(
                lambda m: m.add_learning(self.scope(scope), text, trial_id=trial_id))
            return Added(**r.model_dump())

        @server.tool(structured_output=True)
        @_tool_errors
        def list_learnings(
            scope: ScopeIn | None = None,
            include_retired: bool = False,
            limit: Annotated[int, Field(ge=1, le=10_000)] = LIST_LIMIT,
        ) -> Learnings:
            """Every learning stored at the scope or narrower ones (a missing env, task or
            variation lists all of them), for browsing; recall is for what applies."""
            found = self._with_memory(lambda m: m.learnings(
                self.scope(scope), include_retired=include_retired, limit=limit))
            return Learnings(learnings=[LearningOut.of(x) for x in found])

        @server.tool(structured_output=True)
        @_tool_errors
        def learning_history(learning_id: RowId) -> History:
            """Every event of one learning (added, kept, promoted, demoted, retired...) with
            the trial and score behind it."""
            rows = self._with_memory(lambda m: m.history(learning_id))
            if not rows:
                raise MemoryStoreError(f"learning {learning_id} does not exist")
            return History(learning_id=learning_id, events=[Event.model_validate({
                k: r.get(k) for k in Event.model_fields}) for r in rows])

        @server.resource("clin://learnings/{namespace}/{agent}", mime_type="application/json")
        def scope_learnings(namespace: str, agent: str) -> str:
            """The active learnings an agent holds in a namespace, all envs and tasks."""
            found = self._with_memory(
                lambda m: m.learnings(Scope(namespace=namespace, agent=agent)))
            return Learnings(learnings=[LearningOut.of(x) for x in found]).model_dump_json()

        @server.resource("clin://learnings/{namespace}/{agent}/{task}",
                         mime_type="application/json")
        def task_learnings(namespace: str, agent: str, task: str) -> str:
            """The active learnings an agent holds for one task (any env)."""
            found = self._with_memory(lambda m: [
                x for x in m.learnings(Scope(namespace=namespace, agent=agent))
                if x.task == task])
            return Learnings(learnings=[LearningOut.of(x) for x in found]).model_dump_json()

        return server

    # ------------------------------------------------------------ running
    def run(self, transport: Transport = "stdio", *, port: int = 8765) -> None:
        """Serve until the client goes away (stdio) or Ctrl-C (http). Over stdio nothing
        but the protocol reaches stdout (the SDK points fd 1 at stderr while serving)."""
        if transport == "stdio":
            self.mcp.run("stdio")
            return
        security = TransportSecuritySettings(
            enable_dns_rebinding_protection=True,
            allowed_hosts=[f"{HTTP_HOST}:{port}", f"localhost:{port}"],
            allowed_origins=[f"http://{HTTP_HOST}:{port}", f"http://localhost:{port}"],
        )
        self.mcp.run("streamable-http", host=HTTP_HOST, port=port,
                     transport_security=security)


def serve(
    path: str | Path,
    *,
    namespace: str = "default",
    llm_factory: Callable[[], LLM] | None = None,
    llm_label: str | None = None,
    transport: Transport = "stdio",
    port: int = 8765,
) -> None:
    """Open the memory (a user error, such as a file that is not SQLite, raises
    ``MemoryStoreError`` before anything is served), log its absolute path to stderr, and
    serve it."""
    server = MemoryServer(path, namespace=namespace, llm_factory=llm_factory,
                          llm_label=llm_label)
    where = "stdio" if transport == "stdio" else f"http://{HTTP_HOST}:{port}/mcp"
    reflect_by = "the client's model (sampling), else " + (llm_label or "none: no --model")
    print(f"clin mcp: memory {server.path} (namespace {namespace!r}) on {where}; "
          f"reflection by {reflect_by}", file=sys.stderr, flush=True)
    try:
        server.run(transport, port=port)
    finally:
        server.close()
