"""``clin mcp``: the memory as an MCP server for any agent; a thin command over
:mod:`clin.memory.mcp`. User errors raise :class:`UserError` (one line, exit code 2)."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from clin.errors import UserError

from .options import MODEL_SPECS, BaseUrlOpt

Transport = Literal["stdio", "http"]


def mcp_cmd(
    db: Annotated[
        Path,
        typer.Option("--db", envvar="CLIN_DB",
                     help="SQLite file (default ./clin.db, or $CLIN_DB); give clients an "
                          "absolute path, since they start the server in a directory of "
                          "their choosing."),
    ] = Path("clin.db"),
    namespace: Annotated[
        str, typer.Option(help="Namespace of calls whose scope names none.")
    ] = "default",
    model: Annotated[
        str | None,
        typer.Option(help="Reflection LLM for clients without MCP sampling: "
                     f"{MODEL_SPECS} (default: none, sampling only)."),
    ] = None,
    base_url: BaseUrlOpt = None,
    transport: Annotated[
        str, typer.Option(help="stdio (a client starts the server) | http (streamable HTTP "
                                "on 127.0.0.1).")
    ] = "stdio",
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 for --transport http.")] = 8765,
) -> None:
    """Serve the memory over the Model Context Protocol: record trials, reflect with the
    client's own model (sampling) or --model, recall and render learnings."""
    try:
        from clin.memory.mcp import serve
    except ImportError:
        raise UserError("clin mcp needs the mcp extra: pip install 'clin-agent[mcp]'") from None
    if transport not in ("stdio", "http"):
        raise UserError(f"--transport must be stdio or http, not {transport!r}")
    if not 1 <= port <= 65535:
        raise UserError("--port must be between 1 and 65535")
    if transport == "http":
        _check_port(port)
    factory: Callable[[], Any] | None = None
    if model is not None:
        from clin.llm.spec import parse_spec

        parse_spec(model)  # a bad spec stops here, before anything is served
        spec = model

        def build() -> Any:  # built on the first reflection a client without sampling asks for
            from clin.llm.spec import build_llm
            from clin.reflection import PromptLLM

            return PromptLLM(build_llm(spec, base_url=base_url))

        factory = build

    serve(db, namespace=namespace, llm_factory=factory, llm_label=model,
          transport=transport, port=port)


def _check_port(port: int) -> None:
    """A port already taken is the user's to change, said before anything starts (uvicorn
    would log it among its start-up lines and exit 3)."""
    from clin.memory.mcp import HTTP_HOST

    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((HTTP_HOST, port))
        except OSError as exc:
            raise UserError(f"cannot listen on {HTTP_HOST}:{port}: {exc.strerror}; pass "
                            "another --port") from None


def register(app: typer.Typer) -> None:
    """Add ``mcp`` to the ``clin`` app."""
    app.command("mcp")(mcp_cmd)
