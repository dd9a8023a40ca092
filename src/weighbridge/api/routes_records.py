"""Submissions and their findings, the ledger, and notices (with the public verify endpoints).

Reads are open to every role (a review is team work, and the auditor reads everything); writes
admit the roles the CLI's services admit: submitting and opening (`open` in the workflow table),
findings by evaluators, revoking notices by approvers and admins, the full ledger by auditors and
admins. The two `/public/` routes need no login: anyone holding a notice can check it.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field
from sqlalchemy import select

from weighbridge.api.problems import PROBLEM_RESPONSES, ApiProblem, not_found
from weighbridge.api.security import Anyone, ApiState, Auditors, Evaluators, Principal, Revokers, StateDep, may_take
from weighbridge.domain import Finding, Severity
from weighbridge.errors import WeighbridgeError
from weighbridge.intake.resolve import resolve_model
from weighbridge.ledger.records import entry_record
from weighbridge.services.audit import record_as
from weighbridge.services.evidence import entries_about
from weighbridge.services.intake import open_vault, require_signer, signer_requirement, take_in
from weighbridge.services.ledger import export_bundle, read_entries, verify_store
from weighbridge.store.schema import FindingRow, SubmissionRow
from weighbridge.workflow.states import Action

router = APIRouter(prefix="/api/v1", responses=PROBLEM_RESPONSES)
FINDING_ACTION = "finding.add"
REVOCATIONS_FILE = "revocations.dsse.json"  # as `weighbridge notice revoke` writes it


# -- submissions ----------------------------------------------------------------------------------


class SubmissionOut(BaseModel):
    id: str
    name: str
    format: str
    digest: str
    created_at: datetime


class SubmissionDetailOut(SubmissionOut):
    source: str
    files: list[dict[str, Any]]
    documents: list[dict[str, Any]]
    has_card: bool


class SubmitRequest(BaseModel):
    path: str = Field(min_length=1, max_length=4096, description="Relative to the server's intake folder.")
    card: str | None = Field(default=None, min_length=1, max_length=4096, description="Also relative to it.")
    lab: str | None = Field(default=None, min_length=1, max_length=200)


class FindingOut(BaseModel):
    source: str = Field(description="inspection (found at intake) or review (added by an evaluator)")
    kind: str
    severity: str
    message: str
    file: str | None
    location: str | None
    created_at: datetime
    actor: str | None = None
    ledger_seq: int | None = None


class FindingRequest(BaseModel):
    kind: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_.\-]+$")
    severity: Severity
    message: str = Field(min_length=1, max_length=8000)
    file: str | None = Field(default=None, max_length=4096)
    location: str | None = Field(default=None, max_length=4096)
    evidence: str | None = Field(default=None, max_length=65536)


def _submission(st: ApiState, submission_id: str) -> SubmissionRow:
    try:
        return st.store.find_submission(submission_id)
    except WeighbridgeError as exc:
        raise not_found(exc) from None


def _submission_out(r: SubmissionRow) -> SubmissionOut:
    return SubmissionOut(id=r.id, name=r.name, format=r.format, digest=r.digest, created_at=r.created_at)


def _inside_intake(st: ApiState, relative: str) -> Path:
    root = st.settings.intake_root
    if root is None:
        raise ApiProblem(
            403,
            "intake-disabled",
            "Server-side intake is off",
            "This server takes no submissions from its own disk",
            "Start it with --intake-root FOLDER, or submit with the CLI",
        )
    base = root.resolve()
    path = (base / relative).resolve()
    if not path.is_relative_to(base):
        raise ApiProblem(403, "outside-intake", "Outside the intake folder", f"{relative} is not inside {root}")
    if not path.exists():
        raise ApiProblem(404, "not-found", "Not found", f"No such file in the intake folder: {relative}")
    return path


@router.get("/submissions", response_model=list[SubmissionOut], tags=["submissions"], summary="All submissions")
def list_submissions(principal: Anyone, st: StateDep) -> list[SubmissionOut]:
    return [_submission_out(r) for r in st.store.list_submissions()]


@router.get("/submissions/{submission_id}", response_model=SubmissionDetailOut, tags=["submissions"])
def show_submission(submission_id: str, principal: Anyone, st: StateDep) -> SubmissionDetailOut:
    """One submission: its manifest (sha256 per file) and the documents handed in with it."""
    r = _submission(st, submission_id)
    documents = [{"path": p, "sha256": d, "bytes": n} for p, d, n in st.store.documents(r.id)]
    return SubmissionDetailOut(
        **_submission_out(r).model_dump(),
        source=r.source,
        files=json.loads(r.manifest_json),
        documents=documents,
        has_card=r.card_text is not None,
    )


@router.post(
    "/submissions", response_model=SubmissionDetailOut, status_code=201, tags=["submissions"], summary="Submit"
)
def submit(
    body: SubmitRequest, principal: Annotated[Principal, Depends(may_take(Action.OPEN))], st: StateDep
) -> SubmissionDetailOut:
    """Take in a model from the server's intake folder, as `weighbridge submit` does: fingerprint,
    inspect, record, encrypt into custody; signed by the caller."""
    path = _inside_intake(st, body.path)
    card = _inside_intake(st, body.card) if body.card else None
    actor = principal.actor()
    model = resolve_model(str(path))
    signer = signer_requirement(body.lab, None, None)
    if model.path:
        require_signer(Path(model.path), signer)
    vault = open_vault(st.store, notice=lambda _: None) if model.path else None
    intake = take_in(st.store, model, vault=vault, card=card, signer=signer, actor=actor)
    return show_submission(intake.submission.id, principal, st)


@router.get(
    "/submissions/{submission_id}/findings", response_model=list[FindingOut], tags=["findings"], summary="Findings"
)
def list_findings(submission_id: str, principal: Anyone, st: StateDep) -> list[FindingOut]:
    """Inspection's findings (from the store) and reviewers' findings (from their signed ledger entries)."""
    r = _submission(st, submission_id)
    with st.store.session() as s:
        rows = s.scalars(select(FindingRow).where(FindingRow.submission_id == r.id).order_by(FindingRow.id)).all()
    out = [
        FindingOut(
            source=f.source,
            kind=f.kind,
            severity=f.severity,
            message=f.message,
            file=f.file,
            location=f.location,
            created_at=f.created_at,
        )
        for f in rows
    ]
    for entry, evidence in entries_about(st.store, r.id, FINDING_ACTION):
        f = evidence.get("finding") or {}
        out.append(
            FindingOut(
                source="review",
                kind=str(f.get("kind", "")),
                severity=str(f.get("severity", "")),
                message=str(f.get("message", "")),
                file=f.get("file"),
                location=f.get("location"),
                created_at=datetime.fromisoformat(entry.time.replace("Z", "+00:00")),
                actor=entry.actor,
                ledger_seq=entry.seq,
            )
        )
    return out


@router.post(
    "/submissions/{submission_id}/findings",
    response_model=FindingOut,
    status_code=201,
    tags=["findings"],
    summary="Add a reviewer's finding (evaluators)",
)
def add_finding(submission_id: str, body: FindingRequest, principal: Evaluators, st: StateDep) -> FindingOut:
    """A reviewer's finding is a signed ledger entry (`finding.add`) and nothing else: the findings
    table holds inspection's findings, which the evidence gate compares with their own signed entry."""
    r = _submission(st, submission_id)
    actor = principal.actor()
    finding = Finding(body.kind, body.severity, body.message, body.file, body.location, body.evidence)
    entry = record_as(st.store, actor, FINDING_ACTION, r.id, {"finding": asdict(finding)})
    return FindingOut(
        source="review",
        kind=finding.kind,
        severity=finding.severity,
        message=finding.message,
        file=finding.file,
        location=finding.location,
        created_at=datetime.fromisoformat(entry.time.replace("Z", "+00:00")),
        actor=actor.name,
        ledger_seq=entry.seq,
    )


# -- ledger ---------------------------------------------------------------------------------------


class LedgerVerifyOut(BaseModel):
    valid: bool
    entries: int
    checkpoints: int
    uncovered: int
    first_bad_seq: int | None
    message: str
    workflow_problems: list[str]


@router.get("/ledger/entries", tags=["ledger"], summary="Ledger entries, newest last (auditors, admins)")
def ledger_entries(
    principal: Auditors,
    st: StateDep,
    last: Annotated[int, Query(ge=1, le=10000)] = 100,
    subject: Annotated[str | None, Query(max_length=200)] = None,
) -> list[dict[str, Any]]:
    return [entry_record(e) for e in read_entries(st.store, last=last, subject=subject)]


@router.get(
    "/ledger/export",
    tags=["ledger"],
    summary="The audit bundle (JSON Lines), as `weighbridge ledger export` (auditors, admins)",
    response_class=Response,
    responses={200: {"content": {"application/x-ndjson": {}}}},
)
def ledger_export(principal: Auditors, st: StateDep) -> Response:
    with tempfile.TemporaryDirectory(prefix="weighbridge-export-") as tmp:
        path = Path(tmp) / "ledger.jsonl"
        export_bundle(st.store, path)
        data = path.read_bytes()
    return Response(
        data,
        media_type="application/x-ndjson",
        headers={"Content-Disposition": 'attachment; filename="ledger.jsonl"'},
    )


@router.get("/ledger/verify", response_model=LedgerVerifyOut, tags=["ledger"], summary="Verify (auditors, admins)")
def ledger_verify(principal: Auditors, st: StateDep) -> LedgerVerifyOut:
    """The chain, every signature and checkpoint, and the workflow cross-check, as `ledger verify`."""
    from weighbridge.workflow.verify import orphans

    result = verify_store(st.store)
    problems = orphans(st.store)
    return LedgerVerifyOut(
        valid=result.ok and not problems,
        entries=result.entries,
        checkpoints=result.checkpoints,
        uncovered=result.uncovered,
        first_bad_seq=result.first_bad_seq,
        message=result.message,
        workflow_problems=list(problems),
    )


# -- notices --------------------------------------------------------------------------------------


class NoticeOut(BaseModel):
    id: str
    review_id: str | None
    submission_id: str | None
    model: str
    manifest_digest: str
    decided_release: str
    published_at: datetime
    revoked_at: datetime | None
    revocation_reason: str | None


class NoticeDetailOut(NoticeOut):
    statement: dict[str, Any]
    envelope: dict[str, Any]


class RevokeRequest(BaseModel):
    reason: str = Field(min_length=1, max_length=4000)


class NoticeVerifyOut(BaseModel):
    valid: bool
    problems: list[dict[str, Any]]
    notice_id: str | None
    model: str | None
    manifest_digest: str | None
    decided_release: str | None
    runs: list[dict[str, Any]]
    key_id: str | None
    revocation_checked: bool


def _notice_out(row: Any, revoked: dict[str, Any]) -> NoticeOut:
    r = revoked.get(row.id)
    return NoticeOut(
        id=row.id,
        review_id=row.review_id,
        submission_id=row.submission_id,
        model=row.model_name,
        manifest_digest=row.manifest_digest,
        decided_release=row.decided_release,
        published_at=row.published_at,
        revoked_at=r.revoked_at if r else None,
        revocation_reason=r.reason if r else None,
    )


def _revocations(st: ApiState) -> dict[str, Any]:
    from weighbridge.store.notice_schema import revocation_list

    return {r.notice_id: r for r in revocation_list(st.store).entries}


def _notice(st: ApiState, notice_id: str) -> Any:
    from weighbridge.store.notice_schema import find_notice

    try:
        return find_notice(st.store, notice_id)
    except WeighbridgeError as exc:
        raise not_found(exc) from None


@router.get("/notices", response_model=list[NoticeOut], tags=["notices"], summary="Published notices")
def list_notices(principal: Anyone, st: StateDep) -> list[NoticeOut]:
    from weighbridge.store.notice_schema import list_notices as rows

    revoked = _revocations(st)
    return [_notice_out(r, revoked) for r in rows(st.store)]


@router.get("/notices/{notice_id}", response_model=NoticeDetailOut, tags=["notices"], summary="One notice")
def show_notice(notice_id: str, principal: Anyone, st: StateDep) -> NoticeDetailOut:
    from weighbridge.notice import Envelope, Statement

    row = _notice(st, notice_id)
    envelope = Envelope.from_bytes(row.envelope)
    statement = Statement.from_payload(envelope.payload).to_json()
    return NoticeDetailOut(
        **_notice_out(row, _revocations(st)).model_dump(), statement=statement, envelope=json.loads(row.envelope)
    )


@router.post("/notices/{notice_id}/revoke", response_model=NoticeOut, tags=["notices"], summary="Revoke a notice")
def revoke(notice_id: str, body: RevokeRequest, principal: Revokers, st: StateDep) -> NoticeOut:
    """As `weighbridge notice revoke`: record it, re-sign the revocation list with the organisation
    key, and sign a `notice.revoke` ledger entry as the caller (approvers and admins)."""
    from weighbridge.notice import sign_revocations, write_envelope
    from weighbridge.services.orgkey import organisation_signer
    from weighbridge.store.notice_schema import revocation_list, revoke_notice

    row = _notice(st, notice_id)
    actor = principal.actor()
    revoked = revoke_notice(st.store, row.id, body.reason, actor.name)
    envelope = sign_revocations(revocation_list(st.store), organisation_signer(notice=lambda _: None))
    write_envelope(envelope, st.settings.notices_dir / REVOCATIONS_FILE)
    evidence = {"reason": revoked.reason, "revocation_list_sha256": hashlib.sha256(envelope.to_bytes()).hexdigest()}
    record_as(st.store, actor, "notice.revoke", row.id, evidence)
    return _notice_out(row, _revocations(st))


def _verify_bytes(st: ApiState, data: bytes) -> NoticeVerifyOut:
    from weighbridge.notice import verify_notice
    from weighbridge.services.orgkey import organisation_public_key
    from weighbridge.store.notice_schema import revocation_list

    with tempfile.TemporaryDirectory(prefix="weighbridge-notice-") as tmp:
        path = Path(tmp) / "notice.dsse.json"
        path.write_bytes(data)
        result = verify_notice(path, trusted_keys=[organisation_public_key()], revocations=revocation_list(st.store))
    n = result.notice
    return NoticeVerifyOut(
        valid=result.ok,
        problems=[asdict(p) for p in result.problems],
        notice_id=n.notice_id if n else None,
        model=n.model_name if n else None,
        manifest_digest=n.manifest_digest if n else None,
        decided_release=n.decided_release if n else None,
        runs=[asdict(r) for r in n.runs] if n else [],
        key_id=result.key_id,
        revocation_checked=result.revocation_checked,
    )


MAX_NOTICE_BYTES = 1024 * 1024


@router.post(
    "/public/notices/verify",
    response_model=NoticeVerifyOut,
    tags=["public"],
    summary="Verify a notice file (no login)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "The notice file's exact bytes (notice-ID.dsse.json): a re-serialised copy does not verify.",
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    },
)
async def verify_posted_notice(request: Request, st: StateDep) -> NoticeVerifyOut:
    """Checks the signature against this organisation's key and the notice against its revocations.
    A notice that does not verify is a 200 with `valid: false` and the reasons. The body is read as
    bytes, not parsed, because the signature covers the file exactly as it was written."""
    data = await request.body()
    if len(data) > MAX_NOTICE_BYTES:
        raise ApiProblem(413, "too-large", "Too large", f"A notice is at most {MAX_NOTICE_BYTES} bytes")
    return await run_in_threadpool(_verify_bytes, st, data)


@router.get(
    "/public/notices/{notice_id}/verify",
    response_model=NoticeVerifyOut,
    tags=["public"],
    summary="Verify a published notice by id (no login)",
)
def verify_stored_notice(notice_id: str, st: StateDep) -> NoticeVerifyOut:
    return _verify_bytes(st, _notice(st, notice_id).envelope)
