"""One trial of the CLIN agent: controller -> executor -> environment, until a stop rule,
then reflection into memory. Every step and LLM call is written as it happens; the trial is
marked complete only by the final transaction (see ``memory.Memory.finish_trial``)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from pydantic import BaseModel

from clin import prompts
from clin.envs.base import DEFAULT_PROFILE, EnvProfile, NumberedChoices, Observation, TextEnv
from clin.memory import GroundingKind, Memory, ParseReport, ReflectionOutcome, Scope, StepRecord
from clin.memory.learnings import origin
from clin.memory.reflect import room_of

from . import controller, executor, reflection
from .controller import TASK_COMPLETE, HistoryItem, Proposal, ProposalParseError
from .errors import GroundingError
from .llm.base import ChatLLM, Completion, Message, Purpose, purpose

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


def outcome_of(obs: Observation, profile: EnvProfile = DEFAULT_PROFILE) -> str:
    """success (full score), failed (by the environment's failure rule) or incomplete."""
    if obs.score >= 100:
        return "success"
    if profile.failed(obs.score, obs.done):
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
    """Play one trial to a stop rule, reflect on it, and finish its row in one transaction."""
    settings = settings or AgentSettings()
    obs = env.reset(task, variation)
    description = env.task_description()
    trial_id = mem.start_trial(run_id, idx, scope)
    ledger = _Ledger(mem, run_id, trial_id)
    rendered = controller.render_memory(mem.recall(scope, query=description), scope,
                                        settings.memory_tokens)
    lex = executor.lexicon(env.profile)
    play = _Play(obs, env.profile)
    while play.stop_reason is None and len(play.history) < settings.max_steps:
        step = len(play.history) + 1
        t0 = time.perf_counter()
        messages = controller.build_messages(
            task=description, memory_text=rendered.text, history=play.history, step=step,
            score=play.obs.score, observation=play.obs.text, look=play.obs.look,
            inventory=play.obs.inventory, profile=env.profile)
        act = _act(env, lex, llm, messages, play.obs, settings, ledger, step)
        if act.obs is None:  # the model said the task is complete
            play.stop_reason = "task-complete"
            break
        play.advance(step, act)
        overhead = max(0.0, (time.perf_counter() - t0) * 1000 - act.llm_ms - act.env_ms)
        t_db = time.perf_counter()
        mem.add_step(trial_id, _step_record(
            step, act, rendered.resolve(act.proposal.used_learnings), overhead))
        play.overheads.append(overhead + (time.perf_counter() - t_db) * 1000)
        if on_step:
            on_step(StepEvent(trial=idx, step=step, max_steps=settings.max_steps,
                              action=act.action, score=play.obs.score))
    stop_reason = play.stop_reason or "step-limit"
    report = None
    if settings.reflect:
        report = _reflect(llm, mem, ledger, scope, trial_id, description, idx, play)
    outcome = mem.finish_trial(trial_id, score=play.obs.score, completed=play.obs.score >= 100,
                               stop_reason=stop_reason, reflection=report, scope=scope)
    return TrialResult(
        trial_id=trial_id, idx=idx, score=play.obs.score, steps=len(play.history),
        completed=play.obs.score >= 100, stop_reason=stop_reason,
        prompt_tokens=ledger.prompt_tokens, completion_tokens=ledger.completion_tokens,
        llm_attempts=ledger.attempts, outcome=outcome, overhead_ms=play.overheads)


class _Play:
    """The state of a trial's steps: the last observation, the history the controller sees,
    the rooms reflection is shown, and which stop rule (if any) has fired."""

    def __init__(self, obs: Observation, profile: EnvProfile) -> None:
        self.obs, self.profile = obs, profile
        self.history: list[HistoryItem] = []
        self.overheads: list[float] = []  # ms per step outside the LLM and the env
        self.stop_reason: str | None = None
        self.rooms: dict[str, str] = {}  # first full view of each room, for reflection
        self.last_actions: list[str] = []
        _note_room(self.rooms, obs.look, profile.room_pattern)

    def advance(self, step: int, act: _Act) -> None:
        """Take the step's observation into the history and apply the stop rules."""
        assert act.obs is not None
        obs = self.obs = act.obs
        _note_room(self.rooms, obs.look, self.profile.room_pattern)
        self.history.append(HistoryItem(idx=step, action=act.action, observation=obs.text,
                                        reward=obs.reward, rationale=act.proposal.rationale))
        self.last_actions = [*self.last_actions[-(REPEAT_LIMIT - 1):], act.action]
        if obs.done:
            self.stop_reason = {"success": "success", "failed": "failed"}.get(
                outcome_of(obs, self.profile), "env-done")
        elif len(self.last_actions) == REPEAT_LIMIT and len(set(self.last_actions)) == 1:
            self.stop_reason = "repeated-action"


def _step_record(step: int, act: _Act, cited: list[int], overhead_ms: float) -> StepRecord:
    """The ``steps`` row of a step that reached the environment."""
    assert act.obs is not None
    obs = act.obs
    return StepRecord(
        idx=step, proposal=act.proposal.action, action=act.action, grounding=act.grounding,
        rationale=act.proposal.rationale, cited_learning_ids=cited, observation=obs.text,
        reward=obs.reward, score=obs.score, done=obs.done, llm_ms=round(act.llm_ms, 3),
        env_ms=round(act.env_ms, 3), overhead_ms=round(overhead_ms, 3))


def _reflect(llm: ChatLLM, mem: Memory, ledger: _Ledger, scope: Scope, trial_id: int,
             description: str, idx: int, play: _Play) -> ParseReport:
    """Ask the model what the trial teaches, with the learnings in scope to revise."""
    inp = mem.reflection_input(
        scope, trial_id, goal=description, score=play.obs.score,
        outcome=outcome_of(play.obs, play.profile), trial=idx, rooms=list(play.rooms.values()),
        room_pattern=play.profile.room_pattern, origin=lambda learning: origin(learning, scope))
    report, completion, msgs = reflection.reflect(llm, inp)
    ledger.record("reflection", None, msgs, completion)
    return report


def _note_room(rooms: dict[str, str], look: str, pattern: str | None) -> None:
    name = room_of(look, pattern)
    if name is not None and name not in rooms:
        rooms[name] = look


class _Act(NamedTuple):
    proposal: Proposal
    action: str  # what was sent (with " -> option" when an ambiguity was answered)
    grounding: GroundingKind
    obs: Observation | None  # None: the model said the task is complete
    llm_ms: float
    env_ms: float


class _Clock:
    """Milliseconds spent in the LLM and in the environment during one step."""

    def __init__(self) -> None:
        self.llm_ms = self.env_ms = 0.0

    def step(self, env: TextEnv, action: str) -> Observation:
        t = time.perf_counter()
        try:
            return env.step(action)
        finally:
            self.env_ms += (time.perf_counter() - t) * 1000

    def complete(self, llm: ChatLLM, convo: list[Message], schema: dict[str, Any],
                 why: Purpose) -> Completion:
        with purpose(why):
            completion = llm.complete(convo, json_schema=schema,
                                      max_tokens=controller.ANSWER_TOKENS)
        self.llm_ms += completion.latency_ms
        return completion


def _act(
    env: TextEnv,
    lex: executor.Lexicon,
    llm: ChatLLM,
    messages: list[Message],
    obs: Observation,
    settings: AgentSettings,
    ledger: _Ledger,
    step: int,
) -> _Act:
    """Ask for a proposal and send it (see clin/clin/executor.py for the order of attempts),
    re-asking with candidates only when nothing can be sent, and answering an ambiguous
    request with the option naming the proposal's objects (or the model's pick)."""
    enforce = bool(getattr(llm, "enforces_schema", False))
    schema = controller.proposal_schema(
        enum_actions(obs.valid_actions, lex.always_valid) if enforce else None)
    clock = _Clock()
    convo = list(messages)
    proposal: Proposal | None = None
    unsent: Observation | None = None  # the simulator's answer to a proposal it did not parse
    for attempt in range(settings.reasks + 1):
        completion = clock.complete(llm, convo, schema, "controller")
        ledger.record("controller" if attempt == 0 else "reask", step, convo, completion)
        try:
            proposal = controller.parse_proposal(completion.text)
        except ProposalParseError as exc:
            proposal, unsent = None, None
            feedback, candidates = str(exc), []
        else:
            if proposal.action == TASK_COMPLETE:
                return _Act(proposal, TASK_COMPLETE, "complete", None, clock.llm_ms,
                            clock.env_ms)
            sent = _send(env, lex, proposal.action, obs, clock)
            if isinstance(sent, _Unsent):
                unsent = sent.answer
                feedback, candidates = str(sent.error), sent.error.candidates
            else:
                action, kind, new_obs = sent
                if attempt:
                    kind = "reask"
                elif enforce and kind == "exact":
                    kind = "constrained"
                if isinstance(new_obs, NumberedChoices) and new_obs.choices:
                    action, kind, new_obs = _answer_choice(
                        env, lex, llm, convo, completion, proposal.action, action, kind, new_obs,
                        settings, ledger, step, clock)
                return _Act(proposal, action, kind, new_obs, clock.llm_ms, clock.env_ms)
        convo = [
            *messages,
            Message(role="assistant", content=completion.text or "(empty)"),
            Message(
                role="user",
                content=_reask_text(proposal.action if proposal else "", feedback, candidates),
            ),
        ]
    # Out of re-asks. The last proposal was already shown to the simulator, which did not
    # understand it and did nothing: keep that answer as the step (the model sees it in its
    # history) rather than substitute an action it did not choose.
    if proposal is not None and unsent is not None:
        return _Act(proposal, proposal.action, "verbatim", unsent, clock.llm_ms, clock.env_ms)
    new_obs = clock.step(env, FALLBACK_ACTION)
    return _Act(Proposal(action=FALLBACK_ACTION), FALLBACK_ACTION, "fallback", new_obs,
                clock.llm_ms, clock.env_ms)


class _Unsent(NamedTuple):
    error: GroundingError  # what the re-ask tells the model, with its candidates
    answer: Observation  # the simulator's "not understood" answer (the world did not tick)


def _send(
    env: TextEnv, lex: executor.Lexicon, proposal: str, obs: Observation, clock: _Clock
) -> tuple[str, GroundingKind, Observation] | _Unsent:
    """Send what the proposal means: a valid action it names, else the proposal unchanged
    if the simulator's parser understands it, else its normalized form in the env's own
    words ("place the X in the Y" -> "move X to Y") if the parser understands that, else a
    close valid action with the same verb. Returns (action sent, grounding, observation),
    or what to re-ask with."""
    hit = lex.match_valid(proposal, obs.valid_actions)
    if hit is not None:
        return hit.action, hit.method, clock.step(env, hit.action)
    answer = clock.step(env, proposal)
    if answer.understood:
        return proposal, "parser", answer
    norm = lex.normalize(proposal)
    if norm and norm != " ".join(proposal.lower().split()):
        retry = clock.step(env, norm)
        if retry.understood:
            return norm, "parser", retry
    try:
        g = lex.ground(proposal, obs.valid_actions)
    except GroundingError as exc:
        return _Unsent(exc, answer)
    return g.action, g.method, clock.step(env, g.action)


def _answer_choice(
    env: TextEnv,
    lex: executor.Lexicon,
    llm: ChatLLM,
    convo: list[Message],
    completion: Completion,
    proposal: str,
    action: str,
    kind: GroundingKind,
    obs: Observation,
    settings: AgentSettings,
    ledger: _Ledger,
    step: int,
    clock: _Clock,
) -> tuple[str, GroundingKind, Observation]:
    """Answer an ambiguous request: the option naming the proposal's objects, else the
    model's pick among the options. With no usable pick the request is left unanswered (the
    simulator drops it at the next command): never a guess."""
    choices: list[str] = list(obs.choices) if isinstance(obs, NumberedChoices) else []
    pick = lex.choose_option(proposal, choices)
    if pick is not None:
        return f"{action} -> {choices[pick]}", "choice", clock.step(env, str(pick))
    ask = [
        *convo,
        Message(role="assistant", content=completion.text or "(empty)"),
        Message(role="user", content=prompts.render("choice", proposal=proposal,
                                                      choices=choices)),
    ]
    schema = controller.proposal_schema([str(i) for i in range(len(choices))]
                                        if getattr(llm, "enforces_schema", False) else None)
    for _ in range(settings.reasks + 1):
        answer = clock.complete(llm, ask, schema, "choice")
        ledger.record("choice", step, ask, answer)
        pick = _option_index(lex, answer.text, choices)
        if pick is not None:
            return f"{action} -> {choices[pick]}", "asked", clock.step(env, str(pick))
    return action, kind, obs


def _option_index(lex: executor.Lexicon, text: str, choices: list[str]) -> int | None:
    try:
        said = controller.parse_proposal(text).action.strip()
    except ProposalParseError:
        return None
    if said.isdigit() and int(said) < len(choices):
        return int(said)
    norm = lex.normalize(said)
    matches = [i for i, c in enumerate(choices) if lex.normalize(c) == norm]
    return matches[0] if matches else None


def enum_actions(valid_actions: list[str], always_valid: Sequence[str] = (),
                 limit: int = ENUM_LIMIT) -> list[str]:
    """The actions a schema-enforcing backend may choose from. llama.cpp's grammar cost grows
    with the alternatives (a room can offer 1,500: 13 s a call idle, over 100 s on a loaded
    machine; bench/RESULTS.md table 3b), so past ``limit`` only the shortest actions are
    offered: the one-object moves (go, open, pick up, look at, focus on...) stay, the long
    tail of two-object combinations (move/pour/dunk X to Y) is cut."""
    valid = list(dict.fromkeys([*always_valid, *valid_actions]))
    if len(valid) <= limit:
        return valid
    return sorted(valid, key=len)[:limit]


def _reask_text(proposal: str, reason: str, candidates: list[str]) -> str:
    if not candidates:
        return f"Your answer could not be used: {reason}."
    return prompts.render("reask", proposal=proposal, reason=reason, candidates=candidates)
