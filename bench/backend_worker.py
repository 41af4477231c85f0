"""Measure one llama.cpp binding on recorded CLIN prompts; run by ``bench/backends.py`` as
``PYTHON bench/backend_worker.py < job.json > result.json`` with the interpreter of the venv
that has the binding installed (llama-cpp-python is not in CLIN's own venv). Standard library
plus the binding only: no CLIN import.

The job: {"backend": "xllamacpp" | "xllamacpp-json" | "llama-cpp-python", "model": path,
"threads": n, "n_ctx": n, "probe": [messages], "steps": [[messages, schema]...],
"enums": {"label": [messages, schema]}}. Wall seconds and this process's CPU seconds are
reported for every call (CPU time separates the work from the machine's load).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from typing import Any

COMPACT_JSON = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}


class XLlamaCpp:
    """xllamacpp's in-process server; ``compact``: the schema as an llguidance grammar with
    one-line JSON (CLIN's backend), else the server's own response_format json_schema."""

    def __init__(self, model: str, threads: int, n_ctx: int, *, compact: bool) -> None:
        import xllamacpp

        p = xllamacpp.CommonParams()
        p.model.path = model
        p.n_ctx = n_ctx
        p.n_parallel = 1
        p.cpuparams.n_threads = threads
        p.cpuparams_batch.n_threads = threads
        p.warmup = False
        p.verbosity = -1
        p.cache_ram_mib = 0
        p.hostnames = [os.path.join(tempfile.mkdtemp(prefix="bench-xllama-"), "s.sock")]
        self._x = xllamacpp
        self.server = xllamacpp.Server(p)
        self.compact = compact

    def call(self, messages: list[dict], schema: dict | None, max_tokens: int, *,
             cache: bool) -> dict[str, Any]:
        req: dict[str, Any] = {"messages": messages, "max_tokens": max_tokens,
                               "temperature": 0.0, "cache_prompt": cache}
        if schema is not None and self.compact:
            req["grammar"] = self._x.json_schema_to_grammar(
                json.dumps({"additionalProperties": False, **schema,
                            "x-guidance": COMPACT_JSON}))  # as clin.llm.local sends it
        elif schema is not None:
            req["response_format"] = {"type": "json_schema", "json_schema": {"schema": schema}}
        out = self.server.handle_chat_completions(req)
        if "choices" not in out:
            raise RuntimeError(str(out))
        u = out.get("usage") or {}
        return {"text": out["choices"][0]["message"].get("content") or "",
                "prompt_tokens": u.get("prompt_tokens"),
                "completion_tokens": u.get("completion_tokens"),
                "cached_tokens": (u.get("prompt_tokens_details") or {}).get("cached_tokens")}


class LlamaCppPython:
    """llama-cpp-python's ``Llama`` as CLIN's backend used it (schema -> its grammar)."""

    def __init__(self, model: str, threads: int, n_ctx: int) -> None:
        from llama_cpp import Llama

        self.llm = Llama(model_path=model, n_ctx=n_ctx, n_threads=threads,
                         n_threads_batch=threads, seed=0, verbose=False)

    def call(self, messages: list[dict], schema: dict | None, max_tokens: int, *,
             cache: bool) -> dict[str, Any]:
        if not cache:
            self.llm.reset()
        kw: dict[str, Any] = {"messages": messages, "max_tokens": max_tokens, "temperature": 0.0}
        if schema is not None:
            kw["response_format"] = {"type": "json_object", "schema": schema}
        out = self.llm.create_chat_completion(**kw)
        u = out.get("usage") or {}
        return {"text": out["choices"][0]["message"].get("content") or "",
                "prompt_tokens": u.get("prompt_tokens"),
                "completion_tokens": u.get("completion_tokens"), "cached_tokens": None}


def timed(backend: Any, messages: list[dict], schema: dict | None, max_tokens: int, *,
          cache: bool, label: str = "") -> dict[str, Any]:
    w, c = time.perf_counter(), time.process_time()
    out = backend.call(messages, schema, max_tokens, cache=cache)
    out["wall_s"] = time.perf_counter() - w
    out["cpu_s"] = time.process_time() - c
    print(f"  {label}: {out['wall_s']:.1f} s wall, {out['cpu_s']:.1f} s CPU, "
          f"{out['prompt_tokens']} + {out['completion_tokens']} tokens", file=sys.stderr,
          flush=True)
    return out


def valid(text: str, schema: dict) -> bool:
    try:
        data = json.loads(text)
    except ValueError:
        return False
    return isinstance(data, dict) and data.get("action") in schema["properties"]["action"]["enum"]


def main() -> None:
    job = json.load(sys.stdin)
    name, threads, n_ctx = job["backend"], job["threads"], job["n_ctx"]
    w, c = time.perf_counter(), time.process_time()
    if name == "llama-cpp-python":
        b: Any = LlamaCppPython(job["model"], threads, n_ctx)
    else:
        b = XLlamaCpp(job["model"], threads, n_ctx, compact=name == "xllamacpp")
    res: dict[str, Any] = {"backend": name,
                           "load": {"wall_s": time.perf_counter() - w,
                                    "cpu_s": time.process_time() - c}}
    probe = job["probe"]
    # prefill: the whole prompt cold, one token out; decode: the same prompt cached, 1 vs 65
    # free tokens out (the difference is 64 tokens of pure decoding)
    res["prefill"] = timed(b, probe, None, 1, cache=False, label=f"{name} prefill")
    one = timed(b, probe, None, 1, cache=True, label="1 token")
    many = timed(b, probe, None, 65, cache=True, label="65 tokens")
    res["decode"] = {"one": one, "many": many}
    res["steps"] = {}
    for cache in (True, False):
        if not cache:
            timed(b, probe, None, 1, cache=False)  # leave no useful prefix behind
        calls = []
        for messages, schema in job["steps"]:
            out = timed(b, messages, schema, 160, cache=cache, label=f"step cache={cache}")
            out["valid"] = valid(out["text"], schema)
            calls.append(out)
        res["steps"]["on" if cache else "off"] = calls
    res["enums"] = {}
    for label, (messages, schema) in job["enums"].items():
        out = timed(b, messages, schema, 160, cache=False, label=f"enum {label}")
        out["valid"] = valid(out["text"], schema)
        res["enums"][label] = out
    json.dump(res, sys.stdout)


if __name__ == "__main__":
    main()
