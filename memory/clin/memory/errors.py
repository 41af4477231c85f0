"""Errors raised by the memory library. Messages are written for the person who must act."""


class MemoryStoreError(Exception):
    """Base class for every error raised by ``memory``."""


class DatabaseError(MemoryStoreError):
    """The database file cannot be used (not SQLite, corrupt, read-only, locked too long)."""


class QueryError(MemoryStoreError):
    """A read-only query was refused or failed (bad SQL, or it tried to write)."""


class ReflectionError(MemoryStoreError):
    """The LLM used for reflection failed or returned nothing usable."""


class NewerSchemaError(DatabaseError):
    """The file was written by a newer version of the program; it was left untouched."""


class QueryTimeout(QueryError):
    """A read-only query ran past its time limit and was stopped."""
