"""CLIN memory: causal abstractions that an agent learns across attempts, kept in SQLite.

Imports nothing from the rest of the CLIN repository but the prompt files' loader
(``clin.prompts``, Jinja2 only), so any agent can use it alone::

    from clin.memory import Memory, Scope
    mem = Memory("agent.db")
    mem.record_trial(scope, trace, score); mem.reflect(scope, llm=chat_model_or_callable)
    mem.recall(scope, query, k); mem.render(scope, query, budget_tokens=...)

LangChain users: ``clin.memory.langchain`` (retriever and tools); it is the only module that
imports langchain-core.
"""

from .abstractions import Abstraction, ParseReport, normalize, parse_learnings, parse_line
from .add import add_learning
from .db import Schema
from .errors import (
    DatabaseError,
    MemoryStoreError,
    NewerSchemaError,
    QueryError,
    QueryTimeout,
    ReflectionError,
)
from .jsonl import JsonlError, export_jsonl, import_jsonl
from .learnings import (
    AddResult,
    Learning,
    LearningEvent,
    LearningRecord,
    LearningStatus,
    NotALearning,
    ReflectionOutcome,
)
from .record import GROUNDING_KINDS, GroundingKind, StepRecord, TraceError
from .render import RenderedMemory, estimate_tokens, render
from .runs import RunStatus, TrialStatus
from .scope import Scope
from .sql import run_readonly_query
from .store import Memory

__all__ = [
    "GROUNDING_KINDS",
    "Abstraction",
    "AddResult",
    "DatabaseError",
    "GroundingKind",
    "JsonlError",
    "Learning",
    "LearningEvent",
    "LearningRecord",
    "LearningStatus",
    "Memory",
    "MemoryStoreError",
    "NewerSchemaError",
    "NotALearning",
    "ParseReport",
    "QueryError",
    "QueryTimeout",
    "ReflectionError",
    "ReflectionOutcome",
    "RenderedMemory",
    "RunStatus",
    "Schema",
    "Scope",
    "StepRecord",
    "TraceError",
    "TrialStatus",
    "add_learning",
    "estimate_tokens",
    "export_jsonl",
    "import_jsonl",
    "normalize",
    "parse_learnings",
    "parse_line",
    "render",
    "run_readonly_query",
]
