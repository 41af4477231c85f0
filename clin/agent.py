"""One trial of the CLIN agent: controller -> executor -> environment, until a stop rule,
then reflection into memory. Every step and LLM call is written as it happens; the trial is
marked complete only by the final transaction (see ``memory.Memory.finish_trial``)."""

from __future__ import annotations

import time
from collections.abc import Callable

from pydantic import BaseModel

from clin import prompts
from clin.envs.base import Observation, TextEnv
from clin.memory import Memory, ReflectionOutcome, Scope, StepRecord
from clin.memory.reflect import gather, room_of

from . import controller, executor, memory_view, reflection
from .controller import TASK_COMPLETE, HistoryItem, Proposal, ProposalParseError
from .errors import GroundingError
from .llm.base import ChatLLM, Completion, Message
from .memory_view import render_memory

REPEAT_LIMIT = 5
ENUM_LIMIT = 200  # most actions a schema enum may list (see enum_actions)
FALLBACK_ACTION = "look around"


class AgentSettings(BaseModel):
    max_steps: int = 100
    memory_tokens: int = 800  # budget for learnings rendered into the controller prompt
    reasks: int = 2  # extra LLM calls to fix an unparseable or ungroundable proposal
    reflect: bool = True


class StepEvent(BaseModel):
    """Progress of a running trial, for live displays."""

    trial: int
    step: int
    max_steps: int
    action: str
    score: float


class TrialResult(BaseModel):
    trial_id: int
    idx: int
    score: float
    steps: int
    completed: bool
    stop_reason: str
    prompt_tokens: int
    completion_tokens: int
    llm_attempts: int
    outcome: ReflectionOutcome
    overhead_ms: list[float]


class _Ledger:
    """Records LLM calls of a trial to the database and totals their tokens."""

    def __init__(self, mem: Memory, run_id: int, trial_id: int) -> None:
        self.mem, self.run_id, self.trial_id = mem, run_id, trial_id
        self.prompt_tokens = self.completion_tokens = self.attempts = 0

    def record(self, purpose: str, step: int | None, msgs: list[Message], c: Completion) -> None:
        self.prompt_tokens += c.prompt_tokens or 0
        self.completion_tokens += c.completion_tokens or 0
        self.attempts += c.attempts
        self.mem.add_llm_call(
            purpose=purpose,
            model=c.model,
            prompt_tokens=c.prompt_tokens,
            completion_tokens=c.completion_tokens,
            latency_ms=c.latency_ms,
            attempts=c.attempts,
            run_id=self.run_id,
            trial_id=self.trial_id,
            step_idx=step,
            prompt="\n\n".join(f"[{m.role}]\n{m.content}" for m in msgs),
            response=c.text,
        )


def outcome_of(obs: Observation) -> str:
    if obs.score >= 100:
        return "success"
    if obs.score < 0:
        return "failed"
    return "incomplete"


def run_trial(
    *,
    env: TextEnv,
    llm: ChatLLM,
    mem: Memory,
    run_id: int,
    scope: Scope,
    idx: int,
    task: str,
    variation: int,
    settings: AgentSettings | None = None,
    on_step: Callable[[StepEvent], None] | None = None,
) -> TrialResult:
    settings = settings or AgentSettings()
    obs = env.reset(task, variation)
    description = env.task_description()
    trial_id = mem.start_trial(run_id, idx, scope)
    ledger = _Ledger(mem, run_id, trial_id)
    rendered = render_memory(mem.recall(scope, query=description), scope, settings.memory_tokens)
    history: list[HistoryItem] = []
    overheads: list[float] = []
    stop_reason = "step-limit"
    last_actions: list[str] = []
    rooms: dict[str, str] = {}  # first full view of each room, for reflection
    _note_room(rooms, obs.look)

    for step in range(1, settings.max_steps + 1):
        t0 = time.perf_counter()
        llm_ms = 0.0
        messages = controller.build_messages(
            task=description,
            memory_text=rendered.text,
            history=history,
            step=step,
            score=obs.score,
            observation=obs.text,
            look=obs.look,
            inventory=obs.inventory,
        )
        proposal, action, grounding, spent = _decide(llm, messages, obs, settings, ledger, step)
        llm_ms += spent
        if proposal.action == TASK_COMPLETE:
            stop_reason = "task-complete"
            break
        t_env = time.perf_counter()
        new_obs = env.step(action)
        choices = getattr(new_obs, "choices", None)
        if choices:
            pick = executor.best_choice(proposal.action, choices)
            new_obs = env.step(str(pick))
            action, grounding = f"{action} -> {choices[pick]}", "choice"
        env_ms = (time.perf_counter() - t_env) * 1000
        obs = new_obs
        _note_room(rooms, obs.look)
        history.append(HistoryItem(idx=step, action=action, observation=obs.text,
                                   reward=obs.reward, rationale=proposal.rationale))
        total_ms = (time.perf_counter() - t0) * 1000
        overhead = max(0.0, total_ms - llm_ms - env_ms)
        t_db = time.perf_counter()
        mem.add_step(
            trial_id,
            StepRecord(
                idx=step,
                proposal=proposal.action,
                action=action,
                grounding=grounding,
                rationale=proposal.rationale,
                cited_learning_ids=rendered.resolve(proposal.used_learnings),
                observation=obs.text,
                reward=obs.reward,
                score=obs.score,
                done=obs.done,
                llm_ms=round(llm_ms, 3),
                env_ms=round(env_ms, 3),
                overhead_ms=round(overhead, 3),
            ),
        )
        overheads.append(overhead + (time.perf_counter() - t_db) * 1000)
        if on_step:
            on_step(StepEvent(trial=idx, step=step, max_steps=settings.max_steps,
                              action=action, score=obs.score))
        if obs.done:
            stop_reason = {"success": "success", "failed": "failed"}.get(
                outcome_of(obs), "env-done")
            break
        last_actions = [*last_actions[-(REPEAT_LIMIT - 1):], action]
        if len(last_actions) == REPEAT_LIMIT and len(set(last_actions)) == 1:
            stop_reason = "repeated-action"
            break

    report = None
    if settings.reflect:
        inp = gather(mem.store, scope, trial_id, goal=description, score=obs.score,
                     outcome=outcome_of(obs), trial=idx, rooms=list(rooms.values()),
                     origin=lambda learning: memory_view.origin(learning, scope))
        report, completion, msgs = reflection.reflect(llm, inp)
        ledger.record("reflection", None, msgs, completion)
    outcome = mem.finish_trial(
        trial_id,
        score=obs.score,
        completed=obs.score >= 100,
        stop_reason=stop_reason,
        reflection=report,
        scope=scope,
    )
    return TrialResult(
        trial_id=trial_id,
        idx=idx,
        score=obs.score,
        steps=len(history),
        completed=obs.score >= 100,
        stop_reason=stop_reason,
        prompt_tokens=ledger.prompt_tokens,
        completion_tokens=ledger.completion_tokens,
        llm_attempts=ledger.attempts,
        outcome=outcome,
        overhead_ms=overheads,
    )


def _note_room(rooms: dict[str, str], look: str) -> None:
    name = room_of(look)
    if name is not None and name not in rooms:
        rooms[name] = look


def _decide(
    llm: ChatLLM,
    messages: list[Message],
    obs: Observation,
    settings: AgentSettings,
    ledger: _Ledger,
    step: int,
) -> tuple[Proposal, str, str, float]:
    """Ask for a proposal and ground it, re-asking with feedback when it cannot be used.
    Returns (proposal, action, grounding method, ms spent in the LLM)."""
    enforce = bool(getattr(llm, "enforces_schema", False))
    schema = controller.proposal_schema(enum_actions(obs.valid_actions) if enforce else None)
    convo = list(messages)
    spent = 0.0
    proposal: Proposal | None = None
    for attempt in range(settings.reasks + 1):
        completion = llm.complete(convo, json_schema=schema, max_tokens=controller.ANSWER_TOKENS)
        spent += completion.latency_ms
        ledger.record("controller" if attempt == 0 else "reask", step, convo, completion)
        try:
            proposal = controller.parse_proposal(completion.text)
        except ProposalParseError as exc:
            feedback = str(exc)
            candidates: list[str] = []
        else:
            if proposal.action == TASK_COMPLETE:
                return proposal, TASK_COMPLETE, "complete", spent
            try:
                g = executor.ground(proposal.action, obs.valid_actions)
            except GroundingError as exc:
                feedback, candidates = str(exc), exc.candidates
            else:
                method = "constrained" if enforce and g.method == "exact" else g.method
                if attempt:
                    method = "reask"
                return proposal, g.action, method, spent
        convo = [
            *messages,
            Message(role="assistant", content=completion.text or "(empty)"),
            Message(
                role="user",
                content=_reask_text(proposal.action if proposal else "", feedback, candidates),
            ),
        ]
    # Out of re-asks: let the simulator's own parser try the proposal (it accepts names the
    # valid-action list spells differently, and otherwise says no known action matches),
    # rather than substitute an unrelated action. Never a focus: a wrong one fails the task.
    if proposal is not None and proposal.action and not executor.is_focus(proposal.action):
        return proposal, proposal.action, "verbatim", spent
    return Proposal(action=FALLBACK_ACTION), FALLBACK_ACTION, "fallback", spent


def enum_actions(valid_actions: list[str], limit: int = ENUM_LIMIT) -> list[str]:
    """The actions a schema-enforcing backend may choose from. llama.cpp's grammar cost grows
    with the alternatives (a room can offer 1,500: 13 s a call idle, over 100 s on a loaded
    machine; bench/RESULTS.md table 3b), so past ``limit`` only the shortest actions are
    offered: the one-object moves (go, open, pick up, look at, focus on...) stay, the long
    tail of two-object combinations (move/pour/dunk X to Y) is cut."""
    valid = list(dict.fromkeys([*executor.ALWAYS_VALID, *valid_actions]))
    if len(valid) <= limit:
        return valid
    return sorted(valid, key=len)[:limit]


def _reask_text(proposal: str, reason: str, candidates: list[str]) -> str:
    if not candidates:
        return f"Your answer could not be used: {reason}."
    return prompts.render("reask", proposal=proposal, reason=reason, candidates=candidates)
