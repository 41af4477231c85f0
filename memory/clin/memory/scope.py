"""Scopes: where a learning applies. ``None`` in a field means "any" (broader scope)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_validator

Level = Literal["variation", "task", "env", "global"]


def level(env: str | None, task: str | None, variation: object) -> Level:
    """How broad a scope is: its narrowest field that is set."""
    if variation is not None:
        return "variation"
    if task is not None:
        return "task"
    return "env" if env is not None else "global"


class Scope(BaseModel):
    """namespace > agent > env > task > variation. Queries only see this scope and its
    ancestors (fields set to None), never siblings.

    ``variation`` is a label, as the other fields are: an environment's variation number
    (``Scope(task="boil", variation=3)``) is stored and compared as its text ``"3"``, and an
    agent without numbered variations may use any name (``variation="windy"``)."""

    model_config = ConfigDict(frozen=True)

    namespace: str = "default"
    agent: str = "clin"
    env: str | None = None
    task: str | None = None
    variation: int | str | None = None

    @field_validator("variation", mode="before")
    @classmethod
    def _variation_as_text(cls, v: Any) -> Any:
        return None if v is None else str(v)

    def broader(self) -> Scope | None:
        """The next scope up (variation -> task -> env -> global), or None at the top."""
        for field in ("variation", "task", "env"):
            if getattr(self, field) is not None:
                return self.model_copy(update={field: None})
        return None

    def exact_filter(self, alias: str = "") -> tuple[str, list[Any]]:
        """SQL matching rows stored at exactly this scope."""
        p = f"{alias}." if alias else ""
        cols = ("namespace", "agent", "env", "task", "variation")
        return (
            " AND ".join(f"{p}{c} IS ?" for c in cols),
            [getattr(self, c) for c in cols],
        )


def scope_filter(scope: Scope, alias: str = "") -> tuple[str, list[Any]]:
    """SQL matching rows stored at ``scope`` or any broader scope (ancestors)."""
    p = f"{alias}." if alias else ""
    clauses = [f"{p}namespace = ?", f"{p}agent = ?"]
    params: list[Any] = [scope.namespace, scope.agent]
    # Each narrower field may only be set when the broader ones match.
    for field in ("env", "task", "variation"):
        value = getattr(scope, field)
        if value is None:
            clauses.append(f"{p}{field} IS NULL")
        else:
            clauses.append(f"({p}{field} = ? OR {p}{field} IS NULL)")
            params.append(value)
    return " AND ".join(clauses), params
