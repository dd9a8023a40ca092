"""The workflow service: two-person approval, re-review, and records that cannot be forged quietly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.workflow_team import MODEL, Team, make_team, to_findings
from weighbridge.errors import WeighbridgeError
from weighbridge.ledger.signing import KeySigner
from weighbridge.services.ledger import append
from weighbridge.workflow.service import act, event_evidence, find_review, open_review, verify_review
from weighbridge.workflow.states import Action, State

PROPOSAL = {"release": "research_release", "rationale": "Fair on 2 hazards"}


@pytest.fixture
def team(tmp_path: Path) -> Team:
    return make_team(tmp_path)


def proposed(team: Team) -> str:
    review = open_review(team.store, team["sam"], team.submission_id).id
    to_findings(team, review)
    act(team.store, team["eve"], review, Action.PROPOSE, PROPOSAL)
    return review


def test_decision_needs_two_different_approvers_other_than_the_proposer(team: Team) -> None:
    review = open_review(team.store, team["sam"], team.submission_id).id
    to_findings(team, review)
    act(team.store, team["ann"], review, Action.PROPOSE, PROPOSAL)  # an approver may propose...
    with pytest.raises(WeighbridgeError, match="proposed this decision"):
        act(team.store, team["ann"], review, Action.APPROVE)  # ...but not approve it
    act(team.store, team["bob"], review, Action.APPROVE)
    with pytest.raises(WeighbridgeError, match="already approved"):
        act(team.store, team["bob"], review, Action.APPROVE)
    with pytest.raises(WeighbridgeError, match="2 different approvers"):
        act(team.store, team["bob"], review, Action.DECIDE)
    act(team.store, team["carl"], review, Action.APPROVE)
    view = act(team.store, team["bob"], review, Action.DECIDE)
    assert view.state is State.DECIDED
    assert view.events[-1].detail == {"release": "research_release", "approvers": "bob,carl"}
    assert verify_review(team.store, review) == []


def test_an_approval_written_into_the_database_does_not_count(team: Team) -> None:
    review = proposed(team)
    act(team.store, team["ann"], review, Action.APPROVE)
    view = find_review(team.store, review)
    at = view.event_times[-1]
    # Bob never approved. Someone with database access writes the row, pointing at ann's entry...
    detail = "{}"
    with team.store.engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO review_events (review_id, seq, at, actor, action, from_state, to_state, detail, ledger_seq)"
            " VALUES (?, ?, ?, 'bob', 'approve', 'decision_proposed', 'decision_proposed', ?, ?)",
            (review, len(view.events), at.replace(tzinfo=None).isoformat(sep=" "), detail, 999),
        )
    assert find_review(team.store, review).status.approvers == ("ann", "bob")  # the rows alone are fooled
    problems = verify_review(team.store, review)
    assert any("approve by bob" in p and "no ledger entry" in p for p in problems)
    with pytest.raises(WeighbridgeError, match="fails verification"):
        act(team.store, team["carl"], review, Action.DECIDE)


def test_an_approval_signed_with_a_key_nobody_registered_is_detected(team: Team) -> None:
    review = proposed(team)
    act(team.store, team["ann"], review, Action.APPROVE)
    view = find_review(team.store, review)
    seq, at = len(view.events), view.event_times[-1]
    # ...or, cleverer, appends a properly chained ledger entry in bob's name with a key of their own.
    evidence = event_evidence(review, seq, Action.APPROVE, State.DECISION_PROPOSED, State.DECISION_PROPOSED, {}, at)
    entry = append(team.store, KeySigner.generate(), "bob", "review.approve", review, evidence)
    with team.store.engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO review_events (review_id, seq, at, actor, action, from_state, to_state, detail, ledger_seq)"
            " VALUES (?, ?, ?, 'bob', 'approve', 'decision_proposed', 'decision_proposed', '{}', ?)",
            (review, seq, at.replace(tzinfo=None).isoformat(sep=" "), entry.seq),
        )
    problems = verify_review(team.store, review)
    assert any("not signed by bob's registered key" in p for p in problems), problems
    with pytest.raises(WeighbridgeError, match="fails verification"):
        act(team.store, team["carl"], review, Action.DECIDE)


def test_editing_an_event_is_detected(team: Team) -> None:
    review = proposed(team)
    with team.store.engine.begin() as conn:
        conn.exec_driver_sql(
            "UPDATE review_events SET detail = ? WHERE review_id = ? AND action = 'propose'",
            (json.dumps({"release": "open_access", "rationale": "Fair on 2 hazards"}), review),
        )
    assert any("propose by eve" in p and "edited" in p for p in verify_review(team.store, review))


def test_one_open_review_per_submission_and_re_review_links_the_previous(team: Team) -> None:
    first = open_review(team.store, team["sam"], team.submission_id).id
    with pytest.raises(WeighbridgeError, match="already has an open review"):
        open_review(team.store, team["eve"], team.submission_id)
    newer = team.store.add_submission(MODEL, source="/models/tiny-v2.gguf").id
    with pytest.raises(WeighbridgeError, match="still open"):
        open_review(team.store, team["sam"], newer, previous=first)
    act(team.store, team["sam"], first, Action.WITHDRAW, {"reason": "new version coming"})
    second = open_review(team.store, team["sam"], newer, previous=first[:8])
    assert second.previous_review_id == first
    assert verify_review(team.store, first) == [] and verify_review(team.store, second.id) == []
