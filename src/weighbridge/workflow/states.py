"""The review workflow as data: states, actions, who may take each action, and the rules a decision
must satisfy. Pure: no store, no clock, no keys — so every rule is tested with values built by hand,
and the service layer (`workflow.service`) only loads events, asks here, and records the outcome.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from weighbridge.errors import WeighbridgeError


class State(StrEnum):
    SUBMITTED = "submitted"
    IN_CUSTODY = "in_custody"
    INSPECTING = "inspecting"
    EVALUATING = "evaluating"
    FINDINGS = "findings"
    DECISION_PROPOSED = "decision_proposed"
    DECIDED = "decided"
    NOTICE_PUBLISHED = "notice_published"
    WITHDRAWN = "withdrawn"
    REJECTED = "rejected"


class Role(StrEnum):
    SUBMITTER = "submitter"
    EVALUATOR = "evaluator"
    APPROVER = "approver"
    AUDITOR = "auditor"
    ADMIN = "admin"


class Action(StrEnum):
    OPEN = "open"
    TAKE_CUSTODY = "take_custody"
    INSPECT = "inspect"
    EVALUATE = "evaluate"
    RECORD_FINDINGS = "record_findings"
    PROPOSE = "propose"
    APPROVE = "approve"
    REVISE = "revise"
    DECIDE = "decide"
    PUBLISH = "publish"
    PAUSE = "pause"
    RESUME = "resume"
    WITHDRAW = "withdraw"
    REJECT = "reject"


# The forward path; `advance` takes the one step out of the current state along it.
MAIN_PATH: tuple[State, ...] = (
    State.SUBMITTED,
    State.IN_CUSTODY,
    State.INSPECTING,
    State.EVALUATING,
    State.FINDINGS,
    State.DECISION_PROPOSED,
    State.DECIDED,
    State.NOTICE_PUBLISHED,
)
TERMINAL: frozenset[State] = frozenset({State.NOTICE_PUBLISHED, State.WITHDRAWN, State.REJECTED})
# Before a decision: the states a review can be paused, withdrawn or rejected in.
UNDECIDED: frozenset[State] = frozenset(MAIN_PATH[: MAIN_PATH.index(State.DECIDED)])
DEADLINE_DAYS = 30
APPROVALS_NEEDED = 2


@dataclass(frozen=True)
class Rule:
    """One row of the workflow table: an action, where it may start, where it ends, who may take it.

    `to_state` None means the state does not change (approve, pause, resume).
    """

    action: Action
    from_states: frozenset[State]
    to_state: State | None
    roles: frozenset[Role]
    help: str


def _rule(action: Action, sources: Iterable[State], to: State | None, roles: Iterable[Role], help: str) -> Rule:
    return Rule(action, frozenset(sources), to, frozenset(roles), help)


_S, _E, _A = Role.SUBMITTER, Role.EVALUATOR, Role.APPROVER
RULES: dict[Action, Rule] = {
    r.action: r
    for r in (
        _rule(Action.OPEN, (), State.SUBMITTED, (_S, _E), "open a review of a submission; the clock starts"),
        _rule(Action.TAKE_CUSTODY, {State.SUBMITTED}, State.IN_CUSTODY, (_E,), "weights are in custody"),
        _rule(Action.INSPECT, {State.IN_CUSTODY}, State.INSPECTING, (_E,), "static inspection started"),
        _rule(Action.EVALUATE, {State.INSPECTING}, State.EVALUATING, (_E,), "evaluation started"),
        _rule(Action.RECORD_FINDINGS, {State.EVALUATING}, State.FINDINGS, (_E,), "findings complete"),
        _rule(
            Action.PROPOSE, {State.FINDINGS}, State.DECISION_PROPOSED, (_E, _A), "propose a release type + rationale"
        ),
        _rule(Action.APPROVE, {State.DECISION_PROPOSED}, None, (_A,), "approve the proposal (not your own)"),
        _rule(Action.REVISE, {State.DECISION_PROPOSED}, State.FINDINGS, (_E, _A), "send a proposal back"),
        _rule(Action.DECIDE, {State.DECISION_PROPOSED}, State.DECIDED, (_A,), "decide, once two others approved"),
        _rule(Action.PUBLISH, {State.DECIDED}, State.NOTICE_PUBLISHED, (_A,), "publish the signed notice"),
        _rule(Action.PAUSE, UNDECIDED, None, (_E,), "stop the clock: waiting on the submitter"),
        _rule(Action.RESUME, UNDECIDED, None, (_S, _E), "restart the clock"),
        _rule(Action.WITHDRAW, UNDECIDED, State.WITHDRAWN, (_S,), "the submitter withdraws the model"),
        _rule(Action.REJECT, UNDECIDED - {State.SUBMITTED}, State.REJECTED, (_A,), "reject the submission"),
    )
}
# The forward step `advance` takes from each state (actions with their own arguments excluded).
ADVANCE: dict[State, Action] = {
    State.SUBMITTED: Action.TAKE_CUSTODY,
    State.IN_CUSTODY: Action.INSPECT,
    State.INSPECTING: Action.EVALUATE,
    State.EVALUATING: Action.RECORD_FINDINGS,
}


@dataclass(frozen=True)
class Event:
    """What happened to a review, in order. `detail` carries the action's arguments."""

    seq: int
    actor: str
    action: Action
    from_state: State | None
    to_state: State
    detail: dict[str, str]


@dataclass(frozen=True)
class ReviewStatus:
    """A review's state as replayed from its events."""

    state: State
    paused: bool
    proposal: Event | None  # the current proposal (since the last revise), if any
    approvers: tuple[str, ...]  # distinct approvers of the current proposal, in order

    @property
    def open(self) -> bool:
        return self.state not in TERMINAL


def permitted(action: Action, roles: Iterable[Role | str]) -> bool:
    """Whether any of `roles` may take `action` (the role table alone, not the state)."""
    return bool(RULES[action].roles & {Role(r) for r in roles})


def check(action: Action, actor: str, roles: Iterable[Role | str], status: ReviewStatus | None) -> State:
    """The state `action` by `actor` leads to; a `WeighbridgeError` saying why when it is not allowed.

    Args:
        status: the review's replayed status; None only for `open` (no review yet).
    """
    rule = RULES[action]
    held = {Role(r) for r in roles}
    if not rule.roles & held:
        allowed = ", ".join(sorted(rule.roles))
        raise WeighbridgeError(
            f"{actor} may not {action.value.replace('_', ' ')}: that needs the role {allowed}"
            f" ({actor} has {', '.join(sorted(held)) or 'no role'})",
            "Ask an admin for the role, or act as a user who has it (WEIGHBRIDGE_USER_KEY)",
        )
    if status is None:
        if action is not Action.OPEN:
            raise WeighbridgeError(f"Cannot {action.value} a review that does not exist", "Open it first")
        assert rule.to_state is not None
        return rule.to_state
    if status.state not in rule.from_states:
        raise WeighbridgeError(
            f"Cannot {action.value.replace('_', ' ')} a review in state {status.state.value}",
            f"Allowed from: {', '.join(sorted(s.value for s in rule.from_states)) or 'no state'}",
        )
    if action is Action.PAUSE and status.paused:
        raise WeighbridgeError("The clock is already paused", "Resume it with `weighbridge reviews resume`")
    if action is Action.RESUME and not status.paused:
        raise WeighbridgeError("The clock is not paused", "Nothing to resume")
    if status.paused and action not in (Action.RESUME, Action.WITHDRAW, Action.PAUSE):
        raise WeighbridgeError(
            "The review is paused (waiting on the submitter)", "Resume it first: `weighbridge reviews resume`"
        )
    if action is Action.APPROVE:
        _check_approval(actor, status)
    if action is Action.DECIDE and len(status.approvers) < APPROVALS_NEEDED:
        raise WeighbridgeError(
            f"A decision needs {APPROVALS_NEEDED} different approvers; this proposal has "
            f"{len(status.approvers)} ({', '.join(status.approvers) or 'none'})",
            "Ask another approver to run `weighbridge reviews approve`",
        )
    return rule.to_state or status.state


def _check_approval(actor: str, status: ReviewStatus) -> None:
    assert status.proposal is not None  # decision_proposed always has one
    if status.proposal.actor == actor:
        raise WeighbridgeError(
            f"{actor} proposed this decision and cannot approve it", "Two other approvers must approve it"
        )
    if actor in status.approvers:
        raise WeighbridgeError(f"{actor} has already approved this proposal", "A second, different approver is needed")


def replay(events: Sequence[Event]) -> ReviewStatus:
    """The status the events lead to, checking each step against the table's states (not roles:
    those are checked when the action is taken, and verified against the ledger separately)."""
    if not events or events[0].action is not Action.OPEN:
        raise WeighbridgeError("A review's history must start with 'open'", "Run `weighbridge reviews verify`")
    status = ReviewStatus(State.SUBMITTED, False, None, ())
    for e in events[1:]:
        rule = RULES[e.action]
        if status.state not in rule.from_states or e.to_state != (rule.to_state or status.state):
            raise WeighbridgeError(
                f"Event {e.seq} ({e.action.value}) cannot happen in state {status.state.value}",
                "The review's history was edited; run `weighbridge ledger verify`",
            )
        status = _step(status, e)
    return status


def _step(status: ReviewStatus, e: Event) -> ReviewStatus:
    if e.action is Action.PAUSE:
        return ReviewStatus(status.state, True, status.proposal, status.approvers)
    if e.action is Action.RESUME:
        return ReviewStatus(status.state, False, status.proposal, status.approvers)
    if e.action is Action.PROPOSE:
        return ReviewStatus(e.to_state, status.paused, e, ())
    if e.action is Action.APPROVE:
        approvers = status.approvers if e.actor in status.approvers else (*status.approvers, e.actor)
        return ReviewStatus(e.to_state, status.paused, status.proposal, approvers)
    if e.action is Action.REVISE:
        return ReviewStatus(e.to_state, status.paused, None, ())
    return ReviewStatus(e.to_state, status.paused, status.proposal, status.approvers)
