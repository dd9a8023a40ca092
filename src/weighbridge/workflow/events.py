"""What a review is and what each of its ledger entries signs.

Shared by `service` (which signs entries as actions are taken) and `verify` (which checks the
entries against the event rows). Both need the same entry names and the same digest of an event;
keeping them here lets `service` call `verify` and `verify` read these without importing `service`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from weighbridge.ledger.canonical import evidence_digest
from weighbridge.workflow.clock import Deadline
from weighbridge.workflow.states import Action, Event, ReviewStatus, State

LEDGER_PREFIX = "review."
OVERRIDE_ACTION = LEDGER_PREFIX + "override"


@dataclass(frozen=True)
class ReviewView:
    """A review as listed and shown: where it stands and how long it has left."""

    id: str
    submission_id: str
    model: str
    previous_review_id: str | None
    status: ReviewStatus
    deadline: Deadline
    events: tuple[Event, ...]
    event_times: tuple[datetime, ...]

    @property
    def state(self) -> State:
        return self.status.state


def event_evidence(
    review_id: str,
    seq: int,
    action: Action,
    from_state: State | None,
    to: State,
    detail: Mapping[str, str],
    at: datetime,
) -> dict[str, object]:
    """What a workflow ledger entry signs: everything the event row says, so no field can be edited."""
    return {
        "review": review_id,
        "seq": seq,
        "action": action.value,
        "from": from_state.value if from_state else None,
        "to": to.value,
        "detail": dict(detail),
        "at": at.astimezone(UTC).isoformat(),
    }


def event_digest(view: ReviewView, index: int) -> str:
    e, at = view.events[index], view.event_times[index]
    return evidence_digest(event_evidence(view.id, e.seq, e.action, e.from_state, e.to_state, e.detail, at))
