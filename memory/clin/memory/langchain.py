"""LangChain integration: a retriever and two tools over one scope of a ``Memory``.

Only this module imports langchain-core (``import clin.memory`` does not), so agents that do not
use LangChain never pay for it. The scope is fixed when the retriever or tools are built:
an LLM calling a tool cannot read or write another task's memory.

    retriever = MemoryRetriever(memory=mem, scope=scope, k=5)
    tools = memory_tools(mem, scope)   # [recall_learnings, record_learning]
"""

from __future__ import annotations

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.tools import BaseTool, StructuredTool, ToolException
from pydantic import BaseModel, Field

from .add import FORMS_HELP, NotALearning, add_learning
from .learnings import Learning
from .render import render
from .scope import Scope
from .store import Memory


def to_document(learning: Learning) -> Document:
    """A learning as a Document: the sentence as content, its row fields as metadata."""
    meta = learning.model_dump(exclude={"text"})
    return Document(page_content=learning.text, metadata=meta, id=str(learning.id))


class MemoryRetriever(BaseRetriever):
    """Learnings of ``scope`` (and its ancestors) most relevant to the query, as Documents."""

    memory: Memory
    scope: Scope
    k: int = 10

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        return [to_document(x) for x in self.memory.recall(self.scope, query or None, self.k)]


class RecallInput(BaseModel):
    query: str = Field(description="what you are about to do or want to know, in a few words")


class RecordInput(BaseModel):
    learning: str = Field(description=f"one causal learning; {FORMS_HELP}")


def recall_tool(mem: Memory, scope: Scope, *, k: int = 10) -> BaseTool:
    def recall_learnings(query: str) -> str:
        shown = render(mem.recall(scope, query or None, k))
        return shown.text or "No learnings recorded yet."

    return StructuredTool.from_function(
        recall_learnings,
        name="recall_learnings",
        description="Recall causal learnings from earlier attempts that are relevant to a "
        "query, most specific and most relevant first.",
        args_schema=RecallInput,
    )


def record_tool(mem: Memory, scope: Scope) -> BaseTool:
    def record_learning(learning: str) -> str:
        try:
            res = add_learning(mem, scope, learning)
        except NotALearning as exc:
            raise ToolException(str(exc)) from None
        return f"{res.status}: [{res.id}] {res.text}"

    return StructuredTool.from_function(
        record_learning,
        name="record_learning",
        description=f"Record one causal learning for later attempts; {FORMS_HELP}.",
        args_schema=RecordInput,
        handle_tool_error=True,  # the refusal goes back to the model as the tool's answer
    )


def memory_tools(mem: Memory, scope: Scope, *, k: int = 10) -> list[BaseTool]:
    """``recall_learnings`` and ``record_learning`` bound to ``scope``."""
    return [recall_tool(mem, scope, k=k), record_tool(mem, scope)]
