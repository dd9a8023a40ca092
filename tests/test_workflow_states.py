"""The workflow table and its rules, pure: no store, no keys."""

from __future__ import annotations

import pytest

from weighbridge.errors import WeighbridgeError
from weighbridge.workflow.states import (
    ADVANCE,
    MAIN_PATH,
    RULES,
    Action,
    Event,
    Role,
    State,
    check,
    permitted,
    replay,
)


def events(*steps: tuple[str, Action, dict[str, str] | None]) -> list[Event]:
    """Events from (actor, action, detail), each starting where the previous ended."""
    out = [Event(0, "sub", Action.OPEN, None, State.SUBMITTED, {})]
    state = State.SUBMITTED
    for actor, action, detail in steps:
        to = RULES[action].to_state or state
        out.append(Event(len(out), actor, action, state, to, detail or {}))
        state = to
    return out


TO_PROPOSAL = [("eva", a, None) for a in ADVANCE.values()] + [("eva", Action.PROPOSE, {"release": "open"})]


def test_main_path_is_reachable_by_advance_then_decision_steps() -> None:
    status = replay(events(*TO_PROPOSAL))
    assert status.state is State.DECISION_PROPOSED
    assert [RULES[a].to_state for a in ADVANCE.values()] == list(MAIN_PATH[1:5])


def test_admin_and_auditor_have_no_workflow_power() -> None:
    for action in Action:
        assert not permitted(action, [Role.AUDITOR])
        assert not permitted(action, [Role.ADMIN])


def test_two_different_approvers_needed_and_proposer_excluded() -> None:
    status = replay(events(*TO_PROPOSAL))
    with pytest.raises(WeighbridgeError, match="proposed this decision"):
        check(Action.APPROVE, "eva", [Role.APPROVER], status)
    one = replay(events(*TO_PROPOSAL, ("ann", Action.APPROVE, None)))
    with pytest.raises(WeighbridgeError, match="already approved"):
        check(Action.APPROVE, "ann", [Role.APPROVER], one)
    with pytest.raises(WeighbridgeError, match=r"2 different approvers.*has 1"):
        check(Action.DECIDE, "ann", [Role.APPROVER], one)
    two = replay(events(*TO_PROPOSAL, ("ann", Action.APPROVE, None), ("bob", Action.APPROVE, None)))
    assert two.approvers == ("ann", "bob")
    assert check(Action.DECIDE, "ann", [Role.APPROVER], two) is State.DECIDED


def test_revise_discards_approvals() -> None:
    steps = [*TO_PROPOSAL, ("ann", Action.APPROVE, None), ("bob", Action.REVISE, None)]
    status = replay(events(*steps, ("eva", Action.PROPOSE, {"release": "research"})))
    assert status.approvers == ()
    assert status.proposal is not None and status.proposal.detail["release"] == "research"


def test_paused_review_only_resumes_or_withdraws() -> None:
    status = replay(events(("eva", Action.PAUSE, None)))
    assert status.paused
    with pytest.raises(WeighbridgeError, match="paused"):
        check(Action.TAKE_CUSTODY, "eva", [Role.EVALUATOR], status)
    with pytest.raises(WeighbridgeError, match="already paused"):
        check(Action.PAUSE, "eva", [Role.EVALUATOR], status)
    assert check(Action.RESUME, "sub", [Role.SUBMITTER], status) is State.SUBMITTED
    assert check(Action.WITHDRAW, "sub", [Role.SUBMITTER], status) is State.WITHDRAWN


def test_terminal_states_accept_nothing() -> None:
    withdrawn = replay(events(("sub", Action.WITHDRAW, None)))
    assert not withdrawn.open
    for action in set(Action) - {Action.OPEN}:
        with pytest.raises(WeighbridgeError, match="Cannot"):
            check(action, "x", list(RULES[action].roles), withdrawn)


def test_replay_refuses_a_history_with_an_impossible_step() -> None:
    forged = events(("eva", Action.TAKE_CUSTODY, None))
    forged.append(Event(2, "ann", Action.DECIDE, State.IN_CUSTODY, State.DECIDED, {}))
    with pytest.raises(WeighbridgeError, match="cannot happen in state in_custody"):
        replay(forged)
