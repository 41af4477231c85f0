"""CLIN memory: causal abstractions that an agent learns across attempts, kept in SQLite.

Imports nothing from the rest of the CLIN repository, so any agent can use it alone::

    from clin.memory import Memory, Scope
    mem = Memory("agent.db")
    mem.record_trial(scope, trace, score); mem.reflect(scope, llm=chat_model_or_callable)
    mem.recall(scope, query, k); mem.render(scope, query, budget_tokens=...)

LangChain users: ``clin.memory.langchain`` (retriever and tools); it is the only module that
imports langchain-core.
"""

from .abstractions import Abstraction, ParseReport, normalize, parse_learnings, parse_line
from .add import AddResult, NotALearning, add_learning
from .errors import DatabaseError, MemoryStoreError, QueryError, ReflectionError
from .jsonl import JsonlError, LearningRecord, export_jsonl, import_jsonl
from .record import TraceError
from .render import RenderedMemory, estimate_tokens, render
from .scope import Scope
from .sql import run_readonly_query
from .store import GROUNDING_KINDS, GroundingKind, Learning, Memory, ReflectionOutcome, StepRecord

__all__ = [
    "GROUNDING_KINDS",
    "Abstraction",
    "AddResult",
    "DatabaseError",
    "GroundingKind",
    "JsonlError",
    "Learning",
    "LearningRecord",
    "Memory",
    "MemoryStoreError",
    "NotALearning",
    "ParseReport",
    "QueryError",
    "ReflectionError",
    "ReflectionOutcome",
    "RenderedMemory",
    "Scope",
    "StepRecord",
    "TraceError",
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
