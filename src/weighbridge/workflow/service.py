"""Reviews in the store: take an action as a user, list open reviews against the clock, verify.

Each action is checked against the role table and the review's replayed state (`states.check`),
signed into the ledger by the acting user, and only then written as a `review_events` row that
points at its ledger entry. The rows make listing fast; the ledger makes them trustworthy:
`verify_review` re-derives everything from signed entries, and `decide` counts only approvals whose
entries verify, so an approval written into the database by hand does not count.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import get_args

from sqlalchemy import func, select

from weighbridge.errors import WeighbridgeError
from weighbridge.ledger.canonical import canonical_json
from weighbridge.policy import load_policy
from weighbridge.policy.model import ReleaseType
from weighbridge.services.audit import record_as
from weighbridge.services.identity import Actor
from weighbridge.store.db import Store
from weighbridge.store.schema import SubmissionRow
from weighbridge.store.workflow_schema import ReviewEventRow, ReviewRow
from weighbridge.workflow.clock import Clock, Pause, deadline, system_clock

# Re-exported: the review record and what its entries sign live in `events`, which `verify` reads too.
from weighbridge.workflow.events import LEDGER_PREFIX as LEDGER_PREFIX
from weighbridge.workflow.events import OVERRIDE_ACTION as OVERRIDE_ACTION
from weighbridge.workflow.events import ReviewView as ReviewView
from weighbridge.workflow.events import event_digest as event_digest
from weighbridge.workflow.events import event_evidence as event_evidence
from weighbridge.workflow.gates import check_gate
from weighbridge.workflow.states import ADVANCE, TERMINAL, Action, Event, ReviewStatus, Role, State, check, replay
from weighbridge.workflow.verify import verify_events

# The steps whose evidence `workflow.gates` checks.
GATED = frozenset({Action.TAKE_CUSTODY, Action.EVALUATE, Action.RECORD_FINDINGS})
RELEASE_TYPES: tuple[str, ...] = get_args(ReleaseType)


def open_review(
    store: Store, actor: Actor, submission: str, *, previous: str | None = None, clock: Clock = system_clock
) -> ReviewView:
    """Open a review of a submission (a re-review when `previous` names the review of an older version).

    The clock starts at the submission's time, not the review's: the 30 days are the submitter's.
    """
    row = store.find_submission(submission)
    prev = find_review(store, previous) if previous else None
    if prev is not None and prev.state not in TERMINAL and prev.state is not State.DECIDED:
        raise WeighbridgeError(
            f"Review {prev.id[:8]} is still open ({prev.state.value})",
            "A re-review follows a finished review; withdraw or finish the old one first",
        )
    with store.session() as s:
        existing = s.scalars(select(ReviewRow).where(ReviewRow.submission_id == row.id)).all()
    live = [r for r in existing if State(r.state) not in TERMINAL]
    if live:
        raise WeighbridgeError(
            f"Submission {row.id[:8]} already has an open review ({live[0].id[:8]})", "Act on that review instead"
        )
    to = check(Action.OPEN, actor.name, actor.roles, None)
    review_id = str(uuid.uuid4())
    now = clock()
    detail = {"submission": row.id, "previous": prev.id if prev else "", "model": row.name}
    seq = _sign(store, actor, review_id, 0, Action.OPEN, None, to, detail, now)
    with store.session() as s:
        s.add(
            ReviewRow(
                id=review_id,
                submission_id=row.id,
                previous_review_id=prev.id if prev else None,
                state=to.value,
                paused=False,
                clock_started_at=row.created_at,
                created_at=now,
                updated_at=now,
            )
        )
        s.flush()
        s.add(_event_row(review_id, 0, now, actor.name, Action.OPEN, None, to, detail, seq))
    return get_review(store, review_id, clock)


def act(
    store: Store,
    actor: Actor,
    review: str,
    action: Action,
    detail: Mapping[str, str] | None = None,
    *,
    clock: Clock = system_clock,
    policy: str = "default",
    override: str | None = None,
) -> ReviewView:
    """Take `action` on a review as `actor`; refused with the reason when the role table, the
    review's state or the evidence the step needs (`workflow.gates`, read against `policy`) does
    not allow it. `override` (admins only) is the reason to go on without that evidence: a
    `review.override` ledger entry of its own, referenced from the event."""
    if action is Action.OPEN:
        raise WeighbridgeError("Use open_review to open a review", "")
    view = find_review(store, review, clock)
    args = dict(detail or {})
    if action is Action.PROPOSE and not (args.get("release") and args.get("rationale")):
        raise WeighbridgeError("A proposal needs a release type and a rationale", "Give --release and --rationale")
    if action is Action.PROPOSE and args["release"] not in RELEASE_TYPES:
        raise WeighbridgeError(
            f"Unknown release type {args['release']!r}", f"Choose one of: {', '.join(RELEASE_TYPES)}"
        )
    status = view.status
    if action is Action.DECIDE:
        status = _verified_status(store, view)
    to = check(action, actor.name, actor.roles, status)
    if action in GATED:
        args |= _gate(store, actor, view, action, policy, override)
    elif override is not None:
        raise WeighbridgeError(f"{action.value} has no evidence gate to override", "Leave --override out")
    if action is Action.DECIDE:
        assert status.proposal is not None
        args.setdefault("release", status.proposal.detail.get("release", ""))
        args["approvers"] = ",".join(status.approvers)
    now = clock()
    seq_no = len(view.events)
    ledger_seq = _sign(store, actor, view.id, seq_no, action, view.state, to, args, now)
    with store.session() as s:
        s.add(_event_row(view.id, seq_no, now, actor.name, action, view.state, to, args, ledger_seq))
        row = s.get_one(ReviewRow, view.id)
        row.state = to.value
        row.paused = {Action.PAUSE: True, Action.RESUME: False}.get(action, row.paused)
        row.updated_at = now
    return get_review(store, view.id, clock)


def advance(
    store: Store,
    actor: Actor,
    review: str,
    note: str = "",
    *,
    clock: Clock = system_clock,
    policy: str = "default",
    override: str | None = None,
) -> ReviewView:
    """Take the next step along the main path (custody → inspecting → evaluating → findings), each
    gated on its evidence (see `act`)."""
    view = find_review(store, review, clock)
    action = ADVANCE.get(view.state)
    if action is None:
        raise WeighbridgeError(
            f"Review {view.id[:8]} is in state {view.state.value}; there is no plain next step",
            "Use propose, approve, decide or publish (see `weighbridge reviews --help`)",
        )
    detail = {"note": note} if note else None
    return act(store, actor, view.id, action, detail, clock=clock, policy=policy, override=override)


def _gate(
    store: Store, actor: Actor, view: ReviewView, action: Action, policy: str, override: str | None
) -> dict[str, str]:
    """The evidence `action` found, for the event's detail; refuses when some is missing, unless an
    admin overrides with a reason (then the override is signed first and the event points at it)."""
    submission = store.find_submission(view.submission_id)
    gate = check_gate(store, submission, action, load_policy(policy))
    if gate.passed:
        if override is not None:
            raise WeighbridgeError("Nothing to override: the evidence is all there", "Leave --override out")
        return gate.evidence
    missing = "; ".join(m.what for m in gate.missing)
    if override is None:
        steps = dict.fromkeys(m.how for m in gate.missing)  # each fix once, in order
        raise WeighbridgeError(
            f"Cannot {action.value.replace('_', ' ')} review {view.id[:8]}: evidence is missing: {missing}",
            " / ".join(steps) + " (an admin can override with --override REASON)",
        )
    if not override.strip():
        raise WeighbridgeError("An override needs a reason", "Say why with --override REASON")
    if Role.ADMIN not in actor.roles:
        raise WeighbridgeError(
            f"{actor.name} may not override a missing-evidence gate: that needs the role admin",
            "Produce the evidence, or ask an admin",
        )
    evidence = {
        "review": view.id,
        "action": action.value,
        "missing": [m.what for m in gate.missing],
        "reason": override,
    }
    entry = record_as(store, actor, OVERRIDE_ACTION, view.id, evidence)
    return {"override": override, "override_entry": str(entry.seq), "missing": missing}


# -- reading ----------------------------------------------------------------------------------------


def find_review(store: Store, prefix: str | None, clock: Clock = system_clock) -> ReviewView:
    """A review by id or unique id prefix."""
    if not prefix:
        raise WeighbridgeError("No review given", "Run `weighbridge reviews` to list them")
    with store.session() as s:
        rows = s.scalars(select(ReviewRow.id).where(ReviewRow.id.startswith(prefix.lower(), autoescape=True))).all()
    if len(rows) != 1:
        what = "No review" if not rows else f"{len(rows)} reviews"
        raise WeighbridgeError(f"{what} matches '{prefix}'", "Run `weighbridge reviews --all` to list them")
    return get_review(store, rows[0], clock)


def get_review(store: Store, review_id: str, clock: Clock = system_clock) -> ReviewView:
    with store.session() as s:
        row = s.get_one(ReviewRow, review_id)
        model = s.scalar(select(SubmissionRow.name).where(SubmissionRow.id == row.submission_id)) or ""
        event_rows = s.scalars(
            select(ReviewEventRow).where(ReviewEventRow.review_id == review_id).order_by(ReviewEventRow.seq)
        ).all()
    events = tuple(_event(e) for e in event_rows)
    times = tuple(e.at for e in event_rows)
    status = replay(events)
    end = times[-1] if State(row.state) in TERMINAL else clock()
    return ReviewView(
        row.id,
        row.submission_id,
        model,
        row.previous_review_id,
        status,
        deadline(row.clock_started_at, pauses(events, times), end),
        events,
        times,
    )


def list_reviews(store: Store, *, include_closed: bool = False, clock: Clock = system_clock) -> list[ReviewView]:
    """Reviews, most urgent first (fewest days left)."""
    with store.session() as s:
        ids = s.scalars(select(ReviewRow.id).order_by(ReviewRow.created_at)).all()
    views = [get_review(store, i, clock) for i in ids]
    if not include_closed:
        views = [v for v in views if v.status.open]
    return sorted(views, key=lambda v: (not v.status.open, v.deadline.days_left))


def pauses(events: Sequence[Event], times: Sequence[datetime]) -> list[Pause]:
    out: list[Pause] = []
    for e, at in zip(events, times, strict=True):
        if e.action is Action.PAUSE:
            out.append(Pause(at, None))
        elif e.action is Action.RESUME and out and out[-1].end is None:
            out[-1] = Pause(out[-1].start, at)
    return out


def count_reviews(store: Store) -> int:
    with store.session() as s:
        return s.scalar(select(func.count()).select_from(ReviewRow)) or 0


# -- signing and verification -----------------------------------------------------------------------


def _sign(
    store: Store,
    actor: Actor,
    review_id: str,
    seq: int,
    action: Action,
    from_state: State | None,
    to: State,
    detail: Mapping[str, str],
    at: datetime,
) -> int:
    evidence = event_evidence(review_id, seq, action, from_state, to, detail, at)
    entry = record_as(store, actor, LEDGER_PREFIX + action.value, review_id, evidence)
    return int(entry.seq)


def verify_review(store: Store, review: str) -> list[str]:
    """Problems with a review's record, empty when every event is backed by a verifying ledger entry
    signed by the registered key of its actor, who held a role allowed to take it."""
    view = find_review(store, review)
    return verify_events(store, view)


def _verified_status(store: Store, view: ReviewView) -> ReviewStatus:
    """The review's status replayed from the events whose ledger entries verify; refuses when any fails."""
    problems = verify_review(store, view.id)
    if problems:
        raise WeighbridgeError(
            f"Review {view.id[:8]} fails verification: {problems[0]}",
            f"Run `weighbridge reviews verify {view.id[:8]}` and `weighbridge ledger verify`",
        )
    return view.status


def _event_row(
    review_id: str,
    seq: int,
    at: datetime,
    actor: str,
    action: Action,
    from_state: State | None,
    to: State,
    detail: Mapping[str, str],
    ledger_seq: int,
) -> ReviewEventRow:
    return ReviewEventRow(
        review_id=review_id,
        seq=seq,
        at=at,
        actor=actor,
        action=action.value,
        from_state=from_state.value if from_state else None,
        to_state=to.value,
        detail=canonical_json(dict(detail)).decode(),
        ledger_seq=ledger_seq,
    )


def _event(row: ReviewEventRow) -> Event:
    return Event(
        row.seq,
        row.actor,
        Action(row.action),
        State(row.from_state) if row.from_state else None,
        State(row.to_state),
        {str(k): str(v) for k, v in json.loads(row.detail).items()},
    )
