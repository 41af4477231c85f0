"""Hardening for every local HTTP server of ours (``clin view``, and any HTTP transport we add):
one ASGI middleware, :func:`local_only`, that answers only requests addressed to this machine
and adds the security headers a browser honours.

Why: a server on 127.0.0.1 is still reachable from any web page the user opens. Through DNS
rebinding (``evil.example`` resolving to 127.0.0.1) a page can read the answers, unless the
server refuses a ``Host`` that is not its own; a cross-site ``Origin`` is refused the same
way. Standard library only, so any layer may import it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
# Nothing leaves the page: no third-party scripts, images, frames or form targets.
DEFAULT_CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
               "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
               "form-action 'self'; frame-ancestors 'none'")


def _hostname(value: str) -> str | None:
    """The host of a ``Host`` header value (``127.0.0.1:8001``, ``[::1]:80``), lower-case, or
    None when it cannot be parsed."""
    try:
        parts = urlsplit(f"//{value}")
        parts.port  # noqa: B018  (raises ValueError for a bad port)
    except ValueError:
        return None
    return parts.hostname


def is_local_host(value: str) -> bool:
    """Whether a ``Host`` header names this machine (any port)."""
    return _hostname(value) in LOCAL_HOSTS


def is_local_origin(value: str) -> bool:
    """Whether an ``Origin`` header is a page served from this machine (``null``, sent by
    sandboxed frames and ``file:`` pages, is not)."""
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and is_local_host(parts.netloc)


def security_headers(csp: str = DEFAULT_CSP) -> list[tuple[bytes, bytes]]:
    return [
        (b"content-security-policy", csp.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"x-frame-options", b"DENY"),
    ]


def local_only(app: ASGIApp, *, csp: str | Callable[[str], str] = DEFAULT_CSP) -> ASGIApp:
    """``app`` answering only requests whose ``Host`` (and ``Origin``, when sent) is
    localhost, 127.0.0.1 or [::1]; others get 403 before ``app`` sees them. Every HTTP
    response gets :func:`security_headers`; ``csp`` may depend on the request path."""

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await app(scope, receive, send)
            return
        headers: dict[bytes, list[bytes]] = {}
        for k, v in scope.get("headers", []):
            headers.setdefault(k.lower(), []).append(v)
        hosts = headers.get(b"host", [])
        origins = headers.get(b"origin", [])
        reason = None
        if len(hosts) != 1 or not is_local_host(hosts[0].decode("latin-1")):
            reason = "this server answers requests for localhost or 127.0.0.1 only (Host)"
        elif any(not is_local_origin(o.decode("latin-1")) for o in origins):
            reason = "cross-origin requests are refused (Origin)"
        policy = csp(scope.get("path", "")) if callable(csp) else csp
        extra = security_headers(policy)
        if reason is not None:
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            body = f"403 Forbidden: {reason}\n".encode()
            await send({"type": "http.response.start", "status": 403, "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()), *extra]})
            await send({"type": "http.response.body", "body": body})
            return
        if scope["type"] == "websocket":
            await app(scope, receive, send)
            return

        async def send_with_headers(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                names = {k for k, _ in extra}
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message = {**message, "headers": [*kept, *extra]}
            await send(message)

        await app(scope, receive, send_with_headers)

    return guarded
