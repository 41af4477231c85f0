"""A tiny OpenAI-compatible chat endpoint on 127.0.0.1 for reliability tests and stress scripts.

It answers scripted valid proposals (alternating always-valid ScienceWorld commands) and
valid reflections, and at ``fault_rate`` injects a fault instead: HTTP 429 / 500, a dropped
connection, a timeout (no answer within ``timeout_s``), a garbage body, or a well-formed
answer whose content is empty, malformed JSON or text with no action. Deterministic for a
seed (requests are served one at a time). ``permanent`` makes every request after
``permanent_after`` good ones fail for good: 401 (bad key), 404 (unknown model) or 400
(context too long). Run it alone with ``python tests/support/fake_openai.py --port 8765``.
"""

from __future__ import annotations

import argparse
import json
import random
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from typing_extensions import Self

from clin.llm.openai_backend import PURPOSE_HEADER

TRANSPORT_FAULTS = ("429", "500", "drop", "timeout", "garbage")
CONTENT_FAULTS = ("empty", "malformed", "noaction")
ALL_FAULTS = TRANSPORT_FAULTS + CONTENT_FAULTS
PERMANENT = {
    "401": (401, "invalid_api_key", "Incorrect API key provided."),
    "404": (404, "model_not_found", "The model does not exist."),
    "400": (400, "context_length_exceeded",
            "This model's maximum context length is 8192 tokens."),
}
CONTROLLER_ACTIONS = ("look around", "inventory")
REFLECTION = (
    "looking around MAY BE NECESSARY to finding the objects the task needs\n"
    "checking the inventory MAY NOT CONTRIBUTE to finishing the task"
)


def default_answer(purpose: str | None, n: int) -> str:
    """A valid answer for the call's declared purpose (``clin.llm.base.purpose``; the
    ``X-Clin-Purpose`` header over HTTP): learnings for a reflection or a meta-memory, else
    a JSON proposal."""
    if purpose in ("reflection", "meta"):
        return REFLECTION
    action = CONTROLLER_ACTIONS[n % len(CONTROLLER_ACTIONS)]
    return json.dumps({"used_learnings": [], "rationale": "scripted", "action": action})


class FakeOpenAI:
    """``with FakeOpenAI(fault_rate=0.2, seed=1) as srv: ... srv.url ...``"""

    def __init__(
        self,
        *,
        fault_rate: float = 0.0,
        seed: int = 0,
        faults: tuple[str, ...] = ALL_FAULTS,
        timeout_s: float = 2.0,
        permanent: str | None = None,
        permanent_after: int = 0,
        port: int = 0,
        echo_auth: bool = False,
        delay_s: float = 0.0,
    ) -> None:
        if permanent is not None and permanent not in PERMANENT:
            raise ValueError(f"permanent must be one of {sorted(PERMANENT)}")
        self.fault_rate, self.faults, self.timeout_s = fault_rate, faults, timeout_s
        self.permanent, self.permanent_after = permanent, permanent_after
        self.echo_auth = echo_auth
        self.delay_s = delay_s  # every answer waits this long first (an LLM-bound load)
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.requests = 0
        self.answered = 0  # valid answers served
        self.injected: Counter[str] = Counter()
        self.auth_headers: set[str] = set()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    @property
    def faults_injected(self) -> int:
        return sum(self.injected.values())

    def start(self) -> Self:
        # shutdown() waits for the loop's next poll: 0.5 s by default, at every stop
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,),
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stats(self) -> dict[str, Any]:
        return {"requests": self.requests, "answered": self.answered,
                "injected": dict(self.injected), "faults_injected": self.faults_injected}

    # ------------------------------------------------------------------ serving
    def _decide(self) -> tuple[str, int]:
        with self.lock:
            self.requests += 1
            if self.permanent and self.answered >= self.permanent_after:
                self.injected[f"permanent-{self.permanent}"] += 1
                return f"permanent-{self.permanent}", self.answered
            if self.faults and self.rng.random() < self.fault_rate:
                kind = self.rng.choice(self.faults)
                self.injected[kind] += 1
                return kind, self.answered
            self.answered += 1
            return "ok", self.answered - 1

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _error(self, status: int, code: str, message: str) -> None:
                body = {"error": {"message": message, "type": "invalid_request_error",
                                  "code": code, "param": None}}
                self._send(status, json.dumps(body).encode())

            def do_GET(self) -> None:
                self._send(200, json.dumps({"object": "list", "data": []}).encode())

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    req = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    req = {}
                auth = self.headers.get("Authorization", "")
                if server.delay_s:
                    time.sleep(server.delay_s)  # concurrent requests wait side by side
                with server.lock:
                    server.auth_headers.add(auth)
                kind, n = server._decide()
                if kind.startswith("permanent-"):
                    status, code, message = PERMANENT[kind.removeprefix("permanent-")]
                    if server.echo_auth:  # some proxies echo what they got; we must not store it
                        message += f" (received {auth!r})"
                    self._error(status, code, message)
                    return
                if kind == "429":
                    self._error(429, "rate_limit_exceeded", "Rate limit reached, retry later.")
                elif kind == "500":
                    self._error(500, "server_error", "The server had an error.")
                elif kind == "drop":
                    self.close_connection = True
                    self.connection.shutdown(2)
                elif kind == "timeout":
                    time.sleep(server.timeout_s)
                    self.close_connection = True
                elif kind == "garbage":
                    self._send(200, b"<html>502 Bad Gateway</html>\x00\xff", "text/html")
                else:
                    content = {
                        "empty": "",
                        "malformed": '{"used_learnings": [1, "rationale": "x", "action": "lo',
                        "noaction": "I am not sure what to do here. Let me think about it.",
                    }.get(kind)
                    if content is None:
                        content = default_answer(self.headers.get(PURPOSE_HEADER), n)
                    self._send(200, json.dumps(_completion(req, content)).encode())

        return Handler


def _completion(req: dict[str, Any], content: str) -> dict[str, Any]:
    prompt_chars = sum(len(str(m.get("content", ""))) for m in req.get("messages") or [])
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": req.get("model", "fake"),
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": prompt_chars // 4, "completion_tokens": len(content) // 4,
                  "total_tokens": prompt_chars // 4 + len(content) // 4},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--fault-rate", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-timeouts", action="store_true",
                    help="leave out the timeout fault (clients waiting 60 s)")
    args = ap.parse_args()
    faults = tuple(f for f in ALL_FAULTS if not (args.no_timeouts and f == "timeout"))
    srv = FakeOpenAI(fault_rate=args.fault_rate, seed=args.seed, faults=faults, port=args.port)
    print(srv.url, flush=True)
    srv.start()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        srv.stop()


if __name__ == "__main__":
    main()
