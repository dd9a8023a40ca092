"""Evidence gates: every forward step needs what its state should have produced, found in the store
and pinned by the ledger; publishing binds the notice to this submission's runs only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.evidence_fixture import pin_reference, run_hazards, submit
from tests.workflow_team import Team, make_team
from weighbridge.errors import WeighbridgeError
from weighbridge.notice import Envelope, Statement
from weighbridge.services.ledger import read_entries
from weighbridge.store.schema import SubmissionRow
from weighbridge.workflow.publish import publish_notice
from weighbridge.workflow.service import act, advance, open_review, verify_review
from weighbridge.workflow.states import Action, State

PROPOSAL = {"release": "research_release", "rationale": "evidence complete"}


@pytest.fixture
def team(tmp_path: Path) -> Team:
    return make_team(tmp_path)


@pytest.fixture
def submission(team: Team, tmp_path: Path) -> SubmissionRow:
    return submit(team, tmp_path)


def at_evaluating(team: Team, submission: SubmissionRow) -> str:
    review = open_review(team.store, team["sam"], submission.id).id
    for _ in range(3):
        advance(team.store, team["eve"], review)
    return review


def test_custody_is_required_and_the_refusal_names_it(team: Team) -> None:
    review = open_review(team.store, team["sam"], team.submission_id).id  # a submission with no files held
    with pytest.raises(WeighbridgeError, match="no custody deposit") as refused:
        advance(team.store, team["eve"], review)
    assert "weighbridge custody deposit" in refused.value.fix
    assert len(read_entries(team.store, subject=review)) == 1  # only the `open`: nothing was signed


def test_a_changed_custody_blob_fails_the_gate(team: Team, submission: SubmissionRow, isolated_home: Path) -> None:
    blob = next((isolated_home / "custody" / submission.id).glob("*.wbc"))
    blob.write_bytes(blob.read_bytes()[:-1] + b"\0")
    review = open_review(team.store, team["sam"], submission.id).id
    with pytest.raises(WeighbridgeError, match="encrypted blob changed"):
        advance(team.store, team["eve"], review)


def test_edited_inspection_findings_fail_the_gate(team: Team, submission: SubmissionRow) -> None:
    review = open_review(team.store, team["sam"], submission.id).id
    advance(team.store, team["eve"], review)  # custody verified
    advance(team.store, team["eve"], review)  # inspection started
    with team.store.engine.begin() as conn:  # someone deletes an awkward finding from the database
        conn.exec_driver_sql("DELETE FROM findings WHERE submission_id = ?", (submission.id,))
        conn.exec_driver_sql(
            "INSERT INTO findings (submission_id, source, kind, severity, message, created_at) "
            "VALUES (?, 'inspection', 'x', 'info', 'planted', '2026-01-01 00:00:00')",
            (submission.id,),
        )
    with pytest.raises(WeighbridgeError, match="differ from those the ledger recorded"):
        advance(team.store, team["eve"], review)


def test_evaluation_needs_a_custody_run_against_a_pinned_reference(
    team: Team, submission: SubmissionRow, tmp_path: Path
) -> None:
    review = at_evaluating(team, submission)
    with pytest.raises(WeighbridgeError, match="no finished hazards run"):
        advance(team.store, team["eve"], review)
    run_hazards(team, submission, from_source=True)
    with pytest.raises(WeighbridgeError, match="not the custody copy"):
        advance(team.store, team["eve"], review)
    run = run_hazards(team, submission)
    with pytest.raises(WeighbridgeError, match="no pinned reference"):
        advance(team.store, team["eve"], review)
    pin_reference(team, tmp_path)
    view = advance(team.store, team["eve"], review)
    assert view.state is State.FINDINGS
    runs = json.loads(view.events[-1].detail["runs"])
    assert (runs[0]["run_id"], runs[0]["reference"]) == (run.id, None)
    assert runs[1]["reference"] == "tiny-ref"
    assert verify_review(team.store, review) == []


def test_a_journal_changed_after_the_run_is_not_evidence(team: Team, submission: SubmissionRow, tmp_path: Path) -> None:
    review = at_evaluating(team, submission)
    run = run_hazards(team, submission)
    pin_reference(team, tmp_path)
    with team.store.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE samples SET response = 'I refuse.' WHERE run_id = ?", (run.id,))
    with pytest.raises(WeighbridgeError, match="differs from what the ledger recorded"):
        advance(team.store, team["eve"], review)


def test_an_admin_override_needs_a_reason_and_is_its_own_visible_entry(team: Team) -> None:
    review = open_review(team.store, team["sam"], team.submission_id).id
    with pytest.raises(WeighbridgeError, match="needs the role admin"):
        advance(team.store, team["eve"], review, override="lab is on-site")
    with pytest.raises(WeighbridgeError, match="needs a reason"):
        advance(team.store, team["local-admin"], review, override=" ")
    # An admin-only user may override, but still needs a role that may take the step itself.
    with pytest.raises(WeighbridgeError, match="needs the role evaluator"):
        advance(team.store, team["adm"], review, override="weights inspected on the lab's premises")
    local_admin = team["local-admin"]  # all roles
    view = advance(team.store, local_admin, review, override="weights inspected on the lab's premises")
    assert view.state is State.IN_CUSTODY
    event = view.events[-1]
    assert event.detail["override"] == "weights inspected on the lab's premises"
    assert "no custody deposit" in event.detail["missing"]
    entries = read_entries(team.store, subject=review)
    override = next(e for e in entries if e.action == "review.override")
    assert int(event.detail["override_entry"]) == override.seq < entries[-1].seq
    assert entries[-1].action == "review.take_custody"
    assert verify_review(team.store, review) == []
    # Editing the reason in the database afterwards is caught.
    with team.store.engine.begin() as conn:
        row = conn.exec_driver_sql(
            "SELECT detail FROM review_events WHERE review_id = ? AND seq = 1", (review,)
        ).scalar_one()
        conn.exec_driver_sql(
            "UPDATE review_events SET detail = ? WHERE review_id = ? AND seq = 1",
            (row.replace("premises", "premises, all checked"), review),
        )
    assert any("was edited" in p for p in verify_review(team.store, review))


def test_a_step_without_a_gate_cannot_be_overridden(team: Team, submission: SubmissionRow) -> None:
    review = open_review(team.store, team["sam"], submission.id).id
    admin = team["local-admin"]
    with pytest.raises(WeighbridgeError, match="Nothing to override"):
        advance(team.store, admin, review, override="just because")  # custody is verified
    advance(team.store, team["eve"], review)
    with pytest.raises(WeighbridgeError, match="inspect has no evidence gate"):
        advance(team.store, admin, review, override="x")


def decided(team: Team, submission: SubmissionRow, tmp_path: Path) -> str:
    review = at_evaluating(team, submission)
    run_hazards(team, submission)
    pin_reference(team, tmp_path)
    advance(team.store, team["eve"], review)
    act(team.store, team["eve"], review, Action.PROPOSE, PROPOSAL)
    act(team.store, team["ann"], review, Action.APPROVE)
    act(team.store, team["bob"], review, Action.APPROVE)
    act(team.store, team["ann"], review, Action.DECIDE)
    return review


def test_publish_binds_the_notice_to_this_submissions_runs(
    team: Team, submission: SubmissionRow, tmp_path: Path
) -> None:
    review = decided(team, submission, tmp_path)
    view, path = publish_notice(team.store, team["bob"], review, tmp_path / "notices")
    content = Statement.from_payload(Envelope.from_bytes(path.read_bytes()).payload).content()
    model_run = next(r for r in content.runs if r.reference is None)
    reference_run = next(r for r in content.runs if r.reference == "tiny-ref")
    assert model_run.suite == "hazards" and len(model_run.journal_digest) == 64
    finish = [e for e in read_entries(team.store, subject=model_run.run_id) if e.action == "run.finish"]
    assert json.loads(finish[0].evidence_json or "")["journal"] == model_run.journal_digest
    assert reference_run.run_id != model_run.run_id
    # Graded against the reference (not ungraded as a report rebuilt without references would be).
    assert all(g.reference == "tiny-ref" and g.grade for g in content.grades)
    assert view.events[-1].detail["runs"].startswith(model_run.run_id)


def test_publish_refuses_the_report_of_another_model(team: Team, submission: SubmissionRow, tmp_path: Path) -> None:
    review = decided(team, submission, tmp_path)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"model": {"digest": "ff" * 32}, "run": {"id": "x"}, "suites": {}}))
    with pytest.raises(WeighbridgeError, match=r"model digest ffffffffffff…, not of this submission's"):
        publish_notice(team.store, team["bob"], review, tmp_path / "n", report=other)
    assert not (tmp_path / "n").exists()


def test_publish_refuses_a_report_with_edited_grades(team: Team, submission: SubmissionRow, tmp_path: Path) -> None:
    from weighbridge.services.evidence import evaluation_problems
    from weighbridge.services.review import recorded_model, report_for_run

    review = decided(team, submission, tmp_path)
    run, _ = evaluation_problems(team.store, submission, "hazards")
    assert run is not None
    from weighbridge.services.evidence import reference_runs
    from weighbridge.services.review import stored_reference

    refs = [stored_reference(team.store, r, rr, "refusal") for r, rr in reference_runs(team.store, run)]
    report = report_for_run(team.store, run, recorded_model(submission), references=refs)
    honest = tmp_path / "honest.json"
    honest.write_text(json.dumps(report))
    category = report["suites"]["hazards"]["categories"][0]
    category["unsafe"] = 0
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(report))
    with pytest.raises(WeighbridgeError, match="The report was edited or is stale"):
        publish_notice(team.store, team["bob"], review, tmp_path / "n", report=edited)
    view, _ = publish_notice(team.store, team["bob"], review, tmp_path / "n", report=honest)
    assert view.state is State.NOTICE_PUBLISHED
