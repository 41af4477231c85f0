"""CLIN memory: causal abstractions that an agent learns across attempts, kept in SQLite.

Imports nothing from the rest of the CLIN repository, so any agent can use it alone::

    from memory import Memory, Scope, parse_learnings
"""

from .abstractions import Abstraction, ParseReport, normalize, parse_learnings, parse_line
from .errors import DatabaseError, MemoryStoreError, QueryError, ReflectionError
from .render import RenderedMemory, estimate_tokens, render
from .scope import Scope
from .sql import run_readonly_query
from .store import Learning, Memory, ReflectionOutcome, StepRecord

__all__ = [
    "Abstraction",
    "DatabaseError",
    "Learning",
    "Memory",
    "MemoryStoreError",
    "ParseReport",
    "QueryError",
    "ReflectionError",
    "ReflectionOutcome",
    "RenderedMemory",
    "Scope",
    "StepRecord",
    "estimate_tokens",
    "normalize",
    "parse_learnings",
    "parse_line",
    "render",
    "run_readonly_query",
]
