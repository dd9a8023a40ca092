"""Reviews: the queue with days left, one review, and each workflow action.

Each action route admits the roles the workflow table gives that action (`may_take`), then calls
the same service the CLI calls (`workflow.service.act` / `advance`, `workflow.publish`), so the
state rules, the two-person approval and the evidence gates are the CLI's, word for word.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from weighbridge.api.problems import PROBLEM_RESPONSES, not_found
from weighbridge.api.security import Anyone, ApiState, Principal, StateDep, may_take, require
from weighbridge.errors import WeighbridgeError
from weighbridge.policy.model import ReleaseType
from weighbridge.workflow.publish import publish_notice
from weighbridge.workflow.service import (
    ReviewView,
    act,
    advance,
    find_review,
    list_reviews,
    open_review,
    verify_review,
)
from weighbridge.workflow.states import ADVANCE, RULES, Action

router = APIRouter(prefix="/api/v1/reviews", tags=["reviews"], responses=PROBLEM_RESPONSES)
# Whoever may take every step `advance` can take (the evaluators, by the workflow table).
ADVANCERS = frozenset.intersection(*(RULES[a].roles for a in ADVANCE.values()))


class EventOut(BaseModel):
    seq: int
    at: datetime
    actor: str
    action: str
    from_state: str | None
    to_state: str
    detail: dict[str, str]


class ReviewOut(BaseModel):
    id: str
    submission_id: str
    model: str
    previous_review_id: str | None
    state: str
    open: bool
    paused: bool
    days_left: float
    overdue: bool
    due_at: datetime
    proposal: dict[str, str] | None
    approvers: list[str]


class ReviewDetailOut(ReviewOut):
    events: list[EventOut]


class OpenRequest(BaseModel):
    submission: str = Field(min_length=1, max_length=64)
    previous: str | None = Field(default=None, min_length=1, max_length=64)


class NoteRequest(BaseModel):
    note: str = Field(default="", max_length=4000)


class ReasonRequest(BaseModel):
    reason: str = Field(min_length=1, max_length=4000)


class OptionalReasonRequest(BaseModel):
    reason: str = Field(default="", max_length=4000)


class AdvanceRequest(BaseModel):
    note: str = Field(default="", max_length=4000)
    override: str | None = Field(
        default=None,
        min_length=1,
        max_length=4000,
        description="Admins: go on without missing evidence, for this reason.",
    )


class ProposeRequest(BaseModel):
    release: ReleaseType
    rationale: str = Field(min_length=1, max_length=8000)


class VerifyOut(BaseModel):
    valid: bool
    problems: list[str]


class PublishOut(BaseModel):
    review: ReviewDetailOut
    notice_file: str


def review_out(v: ReviewView) -> ReviewOut:
    p = v.status.proposal
    return ReviewOut(
        id=v.id,
        submission_id=v.submission_id,
        model=v.model,
        previous_review_id=v.previous_review_id,
        state=v.state.value,
        open=v.status.open,
        paused=v.status.paused,
        days_left=round(v.deadline.days_left, 3),
        overdue=v.deadline.overdue,
        due_at=v.deadline.due_at,
        proposal={**p.detail, "by": p.actor} if p else None,
        approvers=list(v.status.approvers),
    )


def detail_out(v: ReviewView) -> ReviewDetailOut:
    events = [
        EventOut(
            seq=e.seq,
            at=at,
            actor=e.actor,
            action=e.action.value,
            from_state=e.from_state.value if e.from_state else None,
            to_state=e.to_state.value,
            detail=e.detail,
        )
        for e, at in zip(v.events, v.event_times, strict=True)
    ]
    return ReviewDetailOut(**review_out(v).model_dump(), events=events)


def found(st: ApiState, review_id: str) -> ReviewView:
    try:
        return find_review(st.store, review_id)
    except WeighbridgeError as exc:
        raise not_found(exc) from None


def _act(st: ApiState, principal: Principal, review_id: str, action: Action, detail: dict[str, str]) -> ReviewDetailOut:
    view = found(st, review_id)
    return detail_out(act(st.store, principal.actor(), view.id, action, {k: v for k, v in detail.items() if v}))


@router.get("", response_model=list[ReviewOut], summary="The review queue, most urgent first")
def queue(
    principal: Anyone,
    st: StateDep,
    include_closed: Annotated[bool, Query(alias="all", description="Include closed reviews.")] = False,
) -> list[ReviewOut]:
    return [review_out(v) for v in list_reviews(st.store, include_closed=include_closed)]


@router.post("", response_model=ReviewDetailOut, status_code=201, summary="Open a review of a submission")
def open_(
    body: OpenRequest, principal: Annotated[Principal, Depends(may_take(Action.OPEN))], st: StateDep
) -> ReviewDetailOut:
    try:
        st.store.find_submission(body.submission)
    except WeighbridgeError as exc:
        raise not_found(exc) from None
    if body.previous:
        found(st, body.previous)
    return detail_out(open_review(st.store, principal.actor(), body.submission, previous=body.previous))


@router.get("/{review_id}", response_model=ReviewDetailOut, summary="One review with every action taken on it")
def show(review_id: str, principal: Anyone, st: StateDep) -> ReviewDetailOut:
    return detail_out(found(st, review_id))


@router.get("/{review_id}/verify", response_model=VerifyOut, summary="Check every action against its signed entry")
def verify(review_id: str, principal: Anyone, st: StateDep) -> VerifyOut:
    problems = verify_review(st.store, found(st, review_id).id)
    return VerifyOut(valid=not problems, problems=problems)


@router.post("/{review_id}/advance", response_model=ReviewDetailOut, summary="The next evidence-gated step")
def advance_(
    review_id: str,
    body: AdvanceRequest,
    principal: Annotated[Principal, Depends(require(ADVANCERS))],
    st: StateDep,
) -> ReviewDetailOut:
    view = found(st, review_id)
    return detail_out(
        advance(st.store, principal.actor(), view.id, body.note, policy=st.settings.policy, override=body.override)
    )


@router.post("/{review_id}/pause", response_model=ReviewDetailOut, summary="Stop the clock")
def pause(
    review_id: str,
    body: ReasonRequest,
    principal: Annotated[Principal, Depends(may_take(Action.PAUSE))],
    st: StateDep,
) -> ReviewDetailOut:
    return _act(st, principal, review_id, Action.PAUSE, {"reason": body.reason})


@router.post("/{review_id}/resume", response_model=ReviewDetailOut, summary="Restart the clock")
def resume(
    review_id: str,
    body: OptionalReasonRequest,
    principal: Annotated[Principal, Depends(may_take(Action.RESUME))],
    st: StateDep,
) -> ReviewDetailOut:
    return _act(st, principal, review_id, Action.RESUME, {"reason": body.reason})


@router.post("/{review_id}/propose", response_model=ReviewDetailOut, summary="Propose a release decision")
def propose(
    review_id: str,
    body: ProposeRequest,
    principal: Annotated[Principal, Depends(may_take(Action.PROPOSE))],
    st: StateDep,
) -> ReviewDetailOut:
    return _act(st, principal, review_id, Action.PROPOSE, {"release": body.release, "rationale": body.rationale})


@router.post("/{review_id}/approve", response_model=ReviewDetailOut, summary="Approve the proposal (not your own)")
def approve(
    review_id: str,
    body: NoteRequest,
    principal: Annotated[Principal, Depends(may_take(Action.APPROVE))],
    st: StateDep,
) -> ReviewDetailOut:
    return _act(st, principal, review_id, Action.APPROVE, {"note": body.note})


@router.post("/{review_id}/revise", response_model=ReviewDetailOut, summary="Send the proposal back")
def revise(
    review_id: str,
    body: ReasonRequest,
    principal: Annotated[Principal, Depends(may_take(Action.REVISE))],
    st: StateDep,
) -> ReviewDetailOut:
    return _act(st, principal, review_id, Action.REVISE, {"reason": body.reason})


@router.post("/{review_id}/decide", response_model=ReviewDetailOut, summary="Decide, once two others approved")
def decide(
    review_id: str, principal: Annotated[Principal, Depends(may_take(Action.DECIDE))], st: StateDep
) -> ReviewDetailOut:
    return _act(st, principal, review_id, Action.DECIDE, {})


@router.post("/{review_id}/reject", response_model=ReviewDetailOut, summary="Reject the submission")
def reject(
    review_id: str,
    body: ReasonRequest,
    principal: Annotated[Principal, Depends(may_take(Action.REJECT))],
    st: StateDep,
) -> ReviewDetailOut:
    return _act(st, principal, review_id, Action.REJECT, {"reason": body.reason})


@router.post("/{review_id}/withdraw", response_model=ReviewDetailOut, summary="Withdraw the model (the submitter)")
def withdraw(
    review_id: str,
    body: OptionalReasonRequest,
    principal: Annotated[Principal, Depends(may_take(Action.WITHDRAW))],
    st: StateDep,
) -> ReviewDetailOut:
    return _act(st, principal, review_id, Action.WITHDRAW, {"reason": body.reason})


@router.post("/{review_id}/publish", response_model=PublishOut, summary="Publish the signed notice of a decision")
def publish(
    review_id: str, principal: Annotated[Principal, Depends(may_take(Action.PUBLISH))], st: StateDep
) -> PublishOut:
    view = found(st, review_id)
    published, path = publish_notice(
        st.store, principal.actor(), view.id, st.settings.notices_dir, policy=st.settings.policy
    )
    return PublishOut(review=detail_out(published), notice_file=path.name)
