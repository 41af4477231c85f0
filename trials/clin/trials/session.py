"""Wire a ``clin run`` request into real parts: database, environment, LLM, ADAPT protocol.

Cheap checks run first (model spec, database, task, variation) so a typo fails in a second,
before a JVM or a model is loaded."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack, closing
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from clin.agent import AgentSettings, StepEvent, TrialResult
from clin.envs.base import check_task
from clin.envs.registry import make
from clin.llm.base import ChatLLM, Closeable
from clin.llm.local import DEFAULT_NAME
from clin.llm.openai_backend import redact_url
from clin.llm.spec import build_llm, default_spec, parse_spec
from clin.memory import Memory

from .runner import AdaptConfig, RunSummary, run_adapt

DEMO_NOTE = (
    "note: SmolLM2-135M is a demo model that runs offline, not a solver; expect low scores. "
    "Use --model openai:<name> (or --base-url for a local server) for real results."
)


class RunRequest(BaseModel):
    task: str
    trials: int = 5
    variation: int = 0
    model: str | None = None
    base_url: str | None = None
    max_steps: int = 100
    simplification: str | None = None  # ScienceWorld's preset (its default: easy)
    env: str = "scienceworld"  # a registered name or alias (clin.envs.make)
    env_options: dict[str, Any] = {}  # make()'s keyword arguments
    db: Path = Path("clin.db")
    resume: bool = False


def run_session(
    req: RunRequest,
    *,
    llm: ChatLLM | None = None,
    on_step: Callable[[StepEvent], None] | None = None,
    on_trial: Callable[[TrialResult], None] | None = None,
    notice: Callable[[str], Any] = print,
) -> RunSummary:
    spec = req.model or default_spec()
    if llm is None:
        parse_spec(spec)
    options = dict(req.env_options)
    if req.simplification is not None:
        options["simplification"] = req.simplification
    with ExitStack() as stack:
        mem = stack.enter_context(Memory(req.db))
        env = stack.enter_context(closing(make(req.env, **options)))
        check_task(env, req.task, req.variation)
        if llm is None:  # built here, so closed here (last in, first closed)
            llm = build_llm(spec, base_url=req.base_url)
            if isinstance(llm, Closeable):
                stack.callback(llm.close)
        notice(f"database: {Path(req.db).resolve()}")  # first: where to look afterwards
        notice(f"model: {llm.name}")
        if llm.name == DEFAULT_NAME:
            notice(DEMO_NOTE)
        cfg = AdaptConfig(
            task=req.task, variation=req.variation, trials=req.trials,
            settings=AgentSettings(max_steps=req.max_steps),
        )
        return run_adapt(
            cfg, env=env, llm=llm, mem=mem, on_step=on_step, on_trial=on_trial,
            run_config={"model_spec": spec, "base_url": redact_url(req.base_url),
                        "env": env.name, "env_options": options},
            resume=req.resume,
        )
