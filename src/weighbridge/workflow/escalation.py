"""Which open reviews are running out of time, and how badly: deadlines in, escalation records out.

Pure (no store, no clock, no printing, no hook), so each threshold case is tested with deadlines
built by hand; `weighbridge reviews` prints the records, sets its exit code from the worst one and
runs the configured hook once per record. The thresholds are the settings file's
`[deadlines].warn_days` (default 7 and 2 days left).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING

from weighbridge.workflow.clock import Deadline

if TYPE_CHECKING:
    from weighbridge.workflow.events import ReviewView


class Level(IntEnum):
    """How urgent, in order; the values are `weighbridge reviews`'s exit codes (0 and 3-5, because 1 is
    an error and 2 a usage error), so a script can branch on the worst review without parsing text."""

    NONE = 0
    WARNING = 3  # at or under a threshold, but not the last (smallest) one
    URGENT = 4  # at or under the last threshold
    OVERDUE = 5  # past the deadline

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Escalation:
    review_id: str
    model: str
    level: Level
    deadline: Deadline
    threshold: float | None  # the smallest threshold the review is at or under; None when overdue
    paused: bool

    @property
    def days_left(self) -> float:
        return self.deadline.days_left

    @property
    def message(self) -> str:
        """One line that makes sense on its own: in a terminal, a mail subject or a chat message."""
        due = self.deadline.due_at.strftime("%Y-%m-%d")
        paused = " (clock paused)" if self.paused else ""
        who = f"review {self.review_id[:8]} ({self.model})"
        if self.level is Level.OVERDUE:
            return f"{who} is {-self.days_left:.1f} days overdue (was due {due}){paused}"
        return (
            f"{who} has {self.days_left:.1f} days left (due {due}){paused} — "
            f"under the {_days(self.threshold or 0)}-day threshold"
        )


def thresholds_of(warn_days: Iterable[float]) -> tuple[float, ...]:
    """Largest first, each once: the order the levels go in whatever order the settings file used."""
    return tuple(sorted(set(warn_days), reverse=True))


def level_of(days_left: float, thresholds: Sequence[float]) -> tuple[Level, float | None]:
    """The level for `days_left`, and the smallest threshold it is at or under.

    "At or under": 7.0 days left is under the 7-day threshold, so a review escalates on the day
    the settings name, not a day later. Overdue (below zero) outranks every threshold.
    """
    if days_left < 0:
        return Level.OVERDUE, None
    order = thresholds_of(thresholds)
    crossed = [t for t in order if days_left <= t]
    if not crossed:
        return Level.NONE, None
    return (Level.URGENT if crossed[-1] == order[-1] else Level.WARNING), crossed[-1]


def escalate(
    review_id: str, model: str, deadline: Deadline, thresholds: Sequence[float], *, paused: bool = False
) -> Escalation | None:
    """The escalation for one review's deadline, or None when it has time enough."""
    level, threshold = level_of(deadline.days_left, thresholds)
    if level is Level.NONE:
        return None
    return Escalation(review_id, model, level, deadline, threshold, paused)


def escalations(views: Iterable[ReviewView], thresholds: Sequence[float]) -> list[Escalation]:
    """Escalations for the open reviews among `views`, most urgent first.

    A paused review escalates too: its clock is stopped, but someone still has to chase the
    submitter before it restarts with little time left. Closed reviews never escalate.
    """
    found = [
        esc
        for v in views
        if v.status.open
        and (esc := escalate(v.id, v.model, v.deadline, thresholds, paused=v.status.paused)) is not None
    ]
    return sorted(found, key=lambda e: (-e.level, e.days_left))


def worst(found: Iterable[Escalation]) -> Level:
    return max((e.level for e in found), default=Level.NONE)


def _days(value: float) -> str:
    return f"{value:g}"
