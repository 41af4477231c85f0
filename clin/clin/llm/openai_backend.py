"""Any OpenAI-compatible chat endpoint (OpenAI, vLLM, Ollama, llama.cpp server, LM Studio)."""

from __future__ import annotations

import os
import re
import time
from typing import Any

from ..errors import LLMUnavailable, TransientLLMError
from . import guard
from .base import Completion, JsonSchema, Message, current_purpose
from .retry import call_with_retries

PURPOSE_HEADER = "X-Clin-Purpose"  # controller | choice | reflection | meta


class OpenAIChat:
    """``openai:<model>``. The client is built with ``max_retries=0``: retries happen once, in
    :func:`call_with_retries`, and only for transient errors."""

    enforces_schema = False

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 60.0,
        attempts: int = 5,
        structured: bool | None = None,
        temperature: float = 0.0,
    ) -> None:
        import openai

        self.model = model
        self.name = f"openai:{model}"
        self.base_url = base_url or os.environ.get("OPENAI_BASE_URL")
        key = api_key or os.environ.get("OPENAI_API_KEY")
        if not key:
            if self.base_url is None:
                raise LLMUnavailable(
                    "OPENAI_API_KEY is not set: export it, or pass --base-url for a local "
                    "OpenAI-compatible server, or use --model local"
                )
            key = "not-needed"  # local servers usually ignore the key
        self.attempts = attempts
        self.temperature = temperature
        # Structured outputs are an OpenAI feature; other servers vary, so ask for it only
        # on api.openai.com unless told otherwise.
        self.structured = self.base_url is None if structured is None else structured
        self._client = openai.OpenAI(
            api_key=key, base_url=self.base_url, timeout=timeout, max_retries=0
        )

    def complete(self, messages: list[Message], *, json_schema: JsonSchema | None = None,
                 max_tokens: int = 256) -> Completion:
        guard.check_allowed(self.name)
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": [m.model_dump() for m in messages],
            "max_tokens": max_tokens,
            "temperature": self.temperature,
        }
        if (why := current_purpose()) is not None:
            # what the call is for, for a proxy's logs (and the tests' fake server)
            kwargs["extra_headers"] = {PURPOSE_HEADER: why}
        if json_schema is not None and self.structured:
            kwargs["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": json_schema},
            }
        t0 = time.perf_counter()
        resp, tries = call_with_retries(lambda: self._call(kwargs), attempts=self.attempts)
        usage = getattr(resp, "usage", None)
        return Completion(
            text=resp.choices[0].message.content or "",
            model=self.name,
            prompt_tokens=getattr(usage, "prompt_tokens", None),
            completion_tokens=getattr(usage, "completion_tokens", None),
            latency_ms=(time.perf_counter() - t0) * 1000,
            attempts=tries,
        )

    def _call(self, kwargs: dict[str, Any]) -> Any:
        import openai

        where = redact_url(self.base_url) or "api.openai.com"
        try:
            resp = self._client.chat.completions.create(**kwargs)
        except (openai.APITimeoutError, openai.RateLimitError, openai.InternalServerError) as exc:
            raise TransientLLMError(f"{type(exc).__name__}: {self._short(exc)}") from exc
        except openai.APIConnectionError as exc:
            raise TransientLLMError(f"cannot reach {where}: {self._short(exc)}") from exc
        except openai.AuthenticationError:
            raise LLMUnavailable(
                f"{where} rejected the API key (401): check OPENAI_API_KEY"
            ) from None
        except openai.NotFoundError:
            raise LLMUnavailable(
                f"model {self.model!r} was not found at {where}: check --model"
            ) from None
        except openai.BadRequestError as exc:
            raise LLMUnavailable(f"{where} refused the request: {self._short(exc)}") from None
        except openai.APIStatusError as exc:
            if exc.status_code >= 500 or exc.status_code == 429:
                raise TransientLLMError(f"HTTP {exc.status_code}") from exc
            raise LLMUnavailable(
                f"{where} answered HTTP {exc.status_code}: {self._short(exc)}"
            ) from None
        if not getattr(resp, "choices", None):
            raise TransientLLMError("the endpoint returned no choices")
        return resp

    def _short(self, exc: Exception) -> str:
        """The error's text, one line, without the API key: endpoints and proxies may echo
        the request's headers, and this text reaches the terminal and ``runs.error``."""
        return redact(" ".join(str(exc).split()), self._client.api_key)[:300]


_KEYLIKE = re.compile(r"\b(?:sk|pk|rk)-[A-Za-z0-9_\-]{8,}")
_AUTH = re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9+/=._\-]{8,}", re.IGNORECASE)


def redact_url(url: str | None) -> str | None:
    """The URL without its ``user:password@`` part, for messages and ``runs.config``."""
    if not url:
        return url
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return redact(url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"***@{host}"))


def redact(text: str, secret: str | None = None) -> str:
    """Replace ``secret``, anything shaped like an API key (``sk-...``) and the credentials of
    an ``Authorization`` header (``Bearer ...``, ``Basic ...``) with ``***``."""
    if secret and len(secret) >= 8:
        text = text.replace(secret, "***")
    return _AUTH.sub(r"\1 ***", _KEYLIKE.sub("***", text))
