"""A scripted LLM for tests: answers from a list, records every call, and fails loudly when
asked more than its script holds (unlike a cycling fake, which hides extra calls).

A script keyed by purpose (``{"controller": [...], "reflection": [...]}``) answers each call
from the list of the purpose its caller declared (:func:`clin.llm.base.purpose`), so a test
never tells a proposal from a reflection by the prompt's wording."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from ..errors import UnexpectedModelCall
from .base import Completion, JsonSchema, Message, Purpose, current_purpose

Answer = str | Callable[[list[Message]], str]
Script = Sequence[Answer] | Mapping[Purpose, Sequence[Answer]]


class ScriptedLLM:
    enforces_schema = False

    def __init__(self, script: Script, name: str = "scripted") -> None:
        self.keyed = isinstance(script, Mapping)
        # one list per purpose; an unkeyed script is one list every call draws from
        self.scripts: dict[Purpose | None, list[Answer]] = (
            {k: list(v) for k, v in script.items()} if isinstance(script, Mapping)
            else {None: list(script)})
        self.used: dict[Purpose | None, int] = dict.fromkeys(self.scripts, 0)
        self.name = name
        self.calls: list[list[Message]] = []
        self.purposes: list[Purpose | None] = []  # what each call declared
        self.schemas: list[JsonSchema | None] = []

    def complete(self, messages: list[Message], *, json_schema: JsonSchema | None = None,
                 max_tokens: int = 256) -> Completion:
        declared = current_purpose()
        key = declared if self.keyed else None
        answers = self.scripts.get(key)
        if answers is None:
            raise UnexpectedModelCall(
                f"scripted LLM asked for a {declared or 'purpose-less'} answer; its script "
                f"holds only {sorted(str(k) for k in self.scripts)}")
        if self.used[key] >= len(answers):
            which = f" {key}" if self.keyed else ""
            raise UnexpectedModelCall(
                f"scripted LLM asked for{which} answer {self.used[key] + 1} but holds "
                f"{len(answers)}; last prompt ends: {messages[-1].content[-300:]!r}"
            )
        answer = answers[self.used[key]]
        self.used[key] += 1
        self.calls.append(list(messages))
        self.purposes.append(declared)
        self.schemas.append(json_schema)
        text = answer(messages) if callable(answer) else answer
        prompt_chars = sum(len(m.content) for m in messages)
        return Completion(
            text=text,
            model=self.name,
            prompt_tokens=prompt_chars // 4,
            completion_tokens=len(text) // 4,
            latency_ms=0.0,
        )

    def assert_complete(self) -> None:
        left = {k: len(v) - self.used[k] for k, v in self.scripts.items() if len(v) > self.used[k]}
        if left:
            raise AssertionError(f"scripted LLM still holds unused answers: "
                                 f"{sum(left.values())} ({left})")
