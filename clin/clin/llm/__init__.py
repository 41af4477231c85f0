"""LLM backends behind one interface: :class:`ChatLLM`."""

from .base import ChatLLM, Completion, Message
from .fake import ScriptedLLM
from .langchain_backend import LangChainChat
from .spec import build_llm, default_spec, parse_spec

__all__ = [
    "ChatLLM",
    "Completion",
    "LangChainChat",
    "Message",
    "ScriptedLLM",
    "build_llm",
    "default_spec",
    "parse_spec",
]
