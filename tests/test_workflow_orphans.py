"""`ledger verify --store` cross-checks the workflow: a signed action with no event row (a crash
between signing and recording) and an event row with no matching signed action are both named."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.workflow_team import PASSPHRASE, Team, make_team
from weighbridge.cli import app
from weighbridge.services.audit import record_as
from weighbridge.services.identity import actor_from_key, add_user
from weighbridge.workflow import service
from weighbridge.workflow.service import act, advance, find_review, open_review
from weighbridge.workflow.states import Action
from weighbridge.workflow.verify import EventRecord, SignedAction, cross_check, orphans


@pytest.fixture
def team(tmp_path: Path) -> Team:
    return make_team(tmp_path)


def verify_store(team: Team, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        app, ["ledger", "verify", "--store", "--db", str(team.store.engine.url), *extra], env={"COLUMNS": "300"}
    )
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout + result.stderr


def crash_after_signing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The process dies after `_sign` appended the ledger entry, before the event row is written."""

    def die(*_: object, **__: object) -> None:
        raise RuntimeError("killed between signing and recording")

    monkeypatch.setattr(service, "_event_row", die)


def test_an_intact_store_passes(team: Team) -> None:
    review = open_review(team.store, team["sam"], team.submission_id).id
    act(team.store, team["eve"], review, Action.PAUSE, {"reason": "card incomplete"})
    act(team.store, team["sam"], review, Action.RESUME)
    assert orphans(team.store) == []
    code, text = verify_store(team)
    assert code == 0, text
    assert "VALID  the store's ledger" in text and "VALID  the review workflow" in text


def test_a_crash_between_signing_and_recording_is_flagged(team: Team, monkeypatch: pytest.MonkeyPatch) -> None:
    review = open_review(team.store, team["sam"], team.submission_id).id
    with monkeypatch.context() as m:
        crash_after_signing(m)
        with pytest.raises(RuntimeError, match="killed"):
            act(team.store, team["eve"], review, Action.PAUSE, {"reason": "card incomplete"})
    view = find_review(team.store, review)
    assert len(view.events) == 1 and not view.status.paused  # the workflow never saw the pause
    (problem,) = orphans(team.store)
    assert f"review.pause by eve on review {review[:8]}" in problem
    assert "has no workflow event" in problem and "between signing" in problem

    code, text = verify_store(team)
    assert code == 1
    assert "VALID  the store's ledger" in text  # the chain itself is fine...
    assert "INVALID  the review workflow" in text and "review.pause by eve" in text  # ...the record is not
    seq = int(problem.split()[2])
    assert f"ledger entry {seq} (" in text


def test_a_crash_while_opening_names_a_review_that_was_never_created(
    team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as m:
        crash_after_signing(m)
        with pytest.raises(RuntimeError):
            open_review(team.store, team["sam"], team.submission_id)
    (problem,) = orphans(team.store)
    assert "review.open by sam" in problem and "never created" in problem


def test_an_entry_signed_without_its_row_is_flagged(team: Team) -> None:
    """The same orphan made by hand: an entry appended the way `_sign` appends, with no row."""
    review = open_review(team.store, team["sam"], team.submission_id).id
    entry = record_as(team.store, team["ann"], "review.approve", review, {"review": review, "seq": 1})
    (problem,) = orphans(team.store)
    assert problem.startswith(f"ledger entry {entry.seq} (review.approve by ann on review {review[:8]})")


def test_event_rows_without_their_entry_are_flagged(team: Team) -> None:
    review = open_review(team.store, team["sam"], team.submission_id).id
    act(team.store, team["eve"], review, Action.PAUSE, {"reason": "card incomplete"})
    act(team.store, team["sam"], review, Action.RESUME)
    with team.store.engine.begin() as conn:
        # An event pointing at an entry that does not exist...
        conn.exec_driver_sql(
            "INSERT INTO review_events (review_id, seq, at, actor, action, from_state, to_state, detail, ledger_seq)"
            " VALUES (?, 3, '2026-03-01 09:00:00', 'bob', 'approve', 'submitted', 'submitted', '{}', 999)",
            (review,),
        )
        # ...and one re-pointed at the entry of another action (the pause's row now claims the open's).
        open_seq = conn.exec_driver_sql(
            "SELECT ledger_seq FROM review_events WHERE review_id = ? AND action = 'open'", (review,)
        ).scalar()
        conn.exec_driver_sql(
            "UPDATE review_events SET ledger_seq = ? WHERE review_id = ? AND action = 'pause'", (open_seq, review)
        )
    problems = orphans(team.store)
    assert any(
        "event 3" in p and "approve by bob" in p and "ledger entry 999, which does not exist" in p for p in problems
    )
    assert any(
        "event 1" in p and f"ledger entry {open_seq}, which is review.open by sam" in p and "not review.pause" in p
        for p in problems
    ), problems
    assert any("review.pause by eve" in p and "has no workflow event" in p for p in problems)  # its entry, orphaned
    assert len(problems) == 3, problems
    code, text = verify_store(team)
    assert code == 1 and "3 disagreement(s)" in text and "ledger entry 999, which does not exist" in text


def test_a_gate_override_counts_as_recorded_by_the_event_that_names_it(
    team: Team, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`review.override` is signed before the action it lets through, and recorded only through that
    action's event (`override_entry`): matched when the event exists, flagged with it when not."""
    _, key = add_user(team.store, team["adm"], "ova", ["evaluator", "admin"], PASSPHRASE, tmp_path / "ova.pem")
    ova = actor_from_key(team.store, key, PASSPHRASE)
    review = open_review(team.store, team["sam"], team.submission_id).id
    advance(team.store, ova, review, override="custody copy checked by hand")  # no custody deposit
    advance(team.store, ova, review)  # inspect: no gate
    assert orphans(team.store) == []
    with monkeypatch.context() as m:
        crash_after_signing(m)
        with pytest.raises(RuntimeError):
            advance(team.store, ova, review, override="findings read on paper")  # evaluate, no findings
    problems = orphans(team.store)
    assert len(problems) == 2, problems
    assert "review.override by ova" in problems[0] and "named by no event" in problems[0]  # signed first
    assert "review.evaluate by ova" in problems[1] and "has no workflow event" in problems[1]


def test_store_flag_and_a_file_exclude_each_other(team: Team, tmp_path: Path) -> None:
    code, text = verify_store(team, str(tmp_path / "bundle.jsonl"))
    assert code == 1 and "--store" in text


# -- the cross-check by hand ------------------------------------------------------------------------

R = "3f2a1b2c-0000-0000-0000-000000000000"


def test_cross_check_overrides_and_shared_entries() -> None:
    entries = [
        SignedAction(5, "review.open", "sam", R),
        SignedAction(6, "review.override", "adm", R),  # lets the next action through a missing-evidence gate
        SignedAction(7, "review.take_custody", "eve", R),
        SignedAction(8, "review.override", "adm", R),  # signed, but its action never recorded
    ]
    events = [
        EventRecord(R, 0, "sam", "open", 5, "{}"),
        EventRecord(R, 1, "eve", "take_custody", 7, '{"override_entry":"6"}'),
        EventRecord(R, 2, "eve", "take_custody", 7, "{}"),  # a second row claiming the same signature
    ]
    problems = cross_check(entries, events, {R})
    assert len(problems) == 2, problems
    assert "event 2" in problems[0] and "already records event 1" in problems[0]
    assert problems[1].startswith("ledger entry 8 (review.override by adm") and "override_entry=8" in problems[1]
    assert cross_check(entries[:3], events[:2], {R}) == []
