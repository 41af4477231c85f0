"""Prompt size and cache reuse per step, ours against the reference layout, on the states of
the gold replay.

Tokens are counted on the rendered chat text (ChatML, SmolLM2's template, plus the assistant
header a model is prompted with), because that is what llama.cpp tokenizes and caches. The
reusable prefix of a prompt is the longest common prefix with the previous step's prompt,
counted in tokens of that shared text (a boundary token may differ by one from the exact
token-level prefix).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Protocol

from clin.llm.base import Message
from clin.memory import estimate_tokens

from .reference import reference_messages
from .replay import ReplayResult
from .stats import BenchTable, common_prefix_len, mean, median, verdict

TARGET_PREFIX_SHARE = 0.70
TARGET_SIZE_RATIO = 0.50


class TokenCounter(Protocol):
    name: str

    def count(self, text: str) -> int: ...


class EstimateCounter:
    """Four characters a token: used when the local model is not installed."""

    name = "estimate (chars/4)"

    def count(self, text: str) -> int:
        return estimate_tokens(text)


class LlamaCounter:
    """The offline model's own tokenizer (llama.cpp vocabulary of SmolLM2)."""

    def __init__(self) -> None:
        from clin.llm.local import LocalLlama

        self._llm = LocalLlama(n_ctx=512)
        self.name = f"{self._llm.name} tokenizer"

    def count(self, text: str) -> int:
        return self._llm.count_tokens(text)


def default_counter() -> TokenCounter:
    from clin.errors import ClinError

    try:
        return LlamaCounter()
    except ClinError:
        return EstimateCounter()


def chat_text(messages: Sequence[Message]) -> str:
    body = "".join(f"<|im_start|>{m.role}\n{m.content}<|im_end|>\n" for m in messages)
    return body + "<|im_start|>assistant\n"


@dataclass
class LayoutStats:
    tokens: list[int]
    reusable: list[int]  # tokens shared with the previous prompt (steps 2..n)

    @property
    def shares(self) -> list[float]:
        return [r / t for r, t in zip(self.reusable, self.tokens[1:]) if t]

    @property
    def uncached(self) -> list[int]:
        """Tokens a prefix cache cannot serve: what must be processed anew at steps 2..n."""
        return [t - r for r, t in zip(self.reusable, self.tokens[1:])]

    @property
    def weighted_share(self) -> float:
        """Share of all prompt tokens after step 1 that a prefix cache could reuse."""
        total = sum(self.tokens[1:])
        return sum(self.reusable) / total if total else float("nan")


def layout_stats(texts: Sequence[str], counter: TokenCounter) -> LayoutStats:
    tokens = [counter.count(t) for t in texts]
    reusable = [
        counter.count(cur[: common_prefix_len(prev, cur)])
        for prev, cur in pairwise(texts)
    ]
    return LayoutStats(tokens=tokens, reusable=reusable)


def prompt_texts(replay: ReplayResult, counter: TokenCounter) -> tuple[list[str], list[str]]:
    """(ours, reference) chat texts for each step's first controller call (re-asks left out:
    they are not part of the per-step layout)."""
    ours: list[str] = []
    ref: list[str] = []
    for msgs, snap in zip(replay.calls, replay.snapshots):
        if len(msgs) != 2:
            continue
        ours.append(chat_text(msgs))
        ref.append(chat_text(reference_messages(
            task=replay.task_description,
            memory=replay.memory_text,
            look=snap.state.look,
            inventory=snap.state.inventory,
            objects=snap.state.objects,
            templates=snap.state.templates,
            turns=replay.turns[: snap.turns],
            rationales=(replay.rationales + [""] * snap.turns)[: snap.turns],
            count=counter.count,
        )))
    return ours, ref


def prompts_table(replay: ReplayResult, counter: TokenCounter) -> BenchTable:
    ours_t, ref_t = prompt_texts(replay, counter)
    ours, ref = layout_stats(ours_t, counter), layout_stats(ref_t, counter)
    ratio = median(ours.tokens) / median(ref.tokens)
    rows = []
    for name, s in (("ours (prompts/*.j2)", ours), ("reference layout", ref)):
        rows.append([
            name,
            str(len(s.tokens)),
            f"{median(s.tokens):.0f}",
            f"{max(s.tokens)}",
            f"{median(s.shares):.0%}",
            f"{mean(s.shares):.0%}",
            f"{s.weighted_share:.0%}",
            f"{median(s.uncached):.0f}",
        ])
    share = ours.weighted_share
    notes = [
        f"Tokens counted with: {counter.name}, on ChatML chat text.",
        (f"Reusable prefix (ours, token-weighted over steps 2..n): {share:.0%} "
        f"(target >= {TARGET_PREFIX_SHARE:.0%}): {verdict(share >= TARGET_PREFIX_SHARE)}."),
        (f"Ours / reference median tokens: {ratio:.0%} (target <= {TARGET_SIZE_RATIO:.0%}): "
        f"{verdict(ratio <= TARGET_SIZE_RATIO)}. Uncached tokens per step, ours / reference: "
        f"{median(ours.uncached) / median(ref.uncached):.0%}."),
        ("Both layouts carry a rationale of about 200 characters per step (the scripted "
        "controller writes one, as a real model does): ours shows it for every step of its "
        "history window, the reference for its 5 turns."),
    ]
    return BenchTable(
        key="prompts",
        title="2. Prompt tokens per step (gold replay of grow-plant 0)",
        columns=["layout", "prompts", "median tokens", "max tokens", "median reusable",
                 "mean reusable", "token-weighted reusable", "median uncached tokens"],
        rows=rows,
        notes=notes,
    )
