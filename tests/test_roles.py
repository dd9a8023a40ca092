"""Every workflow action tried by every role: only the ones the table allows succeed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.workflow_team import MODEL, Team, make_team, to_findings
from weighbridge.errors import WeighbridgeError
from weighbridge.workflow.service import GATED, act, open_review
from weighbridge.workflow.states import RULES, Action, State

# One single-role user per role.
BY_ROLE = {"submitter": "sam", "evaluator": "eve", "approver": "carl", "auditor": "aud", "admin": "adm"}
TO_FINDINGS = [Action.TAKE_CUSTODY, Action.INSPECT, Action.EVALUATE, Action.RECORD_FINDINGS]
PROPOSAL = {"release": "research_release", "rationale": "grades Fair on two hazards"}


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Team]:
    tmp = tmp_path_factory.mktemp("roles")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WEIGHBRIDGE_HOME", str(tmp / "home"))
        mp.delenv("WEIGHBRIDGE_USER_KEY", raising=False)
        yield make_team(tmp)


def review_ready_for(team: Team, action: Action) -> str:
    """A new review (of a new submission) in a state where `action` is possible."""
    sid = team.store.add_submission(MODEL, source="/models/tiny.gguf").id
    review = open_review(team.store, team["eve"], sid).id
    steps: list[tuple[str, Action, dict[str, str] | None]] = []
    path = {
        Action.TAKE_CUSTODY: 0,
        Action.WITHDRAW: 0,
        Action.PAUSE: 0,
        Action.RESUME: 0,
        Action.INSPECT: 1,
        Action.REJECT: 1,
        Action.EVALUATE: 2,
        Action.RECORD_FINDINGS: 3,
    }.get(action, 4)
    to_findings(team, review, steps=path)
    if action is Action.RESUME:
        steps.append(("eve", Action.PAUSE, {"reason": "waiting for the card"}))
    if action in (Action.APPROVE, Action.REVISE, Action.DECIDE, Action.PUBLISH):
        steps.append(("eve", Action.PROPOSE, PROPOSAL))
    if action in (Action.DECIDE, Action.PUBLISH):
        steps += [("ann", Action.APPROVE, None), ("bob", Action.APPROVE, None)]
    if action is Action.PUBLISH:
        steps.append(("ann", Action.DECIDE, None))
    for who, a, detail in steps:
        act(team.store, team[who], review, a, detail)
    return review


@pytest.mark.parametrize("role", sorted(BY_ROLE))
@pytest.mark.parametrize("action", list(Action), ids=lambda a: a.value)
def test_action_succeeds_only_for_its_roles(team: Team, action: Action, role: str) -> None:
    actor = team[BY_ROLE[role]]
    allowed = role in RULES[action].roles
    if action is Action.OPEN:
        sid = team.store.add_submission(MODEL, source="/models/tiny.gguf").id
        if allowed:
            assert open_review(team.store, actor, sid).state is State.SUBMITTED
        else:
            with pytest.raises(WeighbridgeError, match="needs the role"):
                open_review(team.store, actor, sid)
        return
    review = review_ready_for(team, action)
    detail = PROPOSAL if action is Action.PROPOSE else {"reason": "test"}
    if allowed and action in GATED:  # the role may: what stops this file-less submission is its evidence
        with pytest.raises(WeighbridgeError, match="evidence is missing"):
            act(team.store, actor, review, action, detail)
    elif allowed:
        view = act(team.store, actor, review, action, detail)
        assert view.events[-1].action is action and view.events[-1].actor == actor.name
    else:
        with pytest.raises(WeighbridgeError, match="needs the role"):
            act(team.store, actor, review, action, detail)
