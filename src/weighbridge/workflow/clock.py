"""The 30-day clock: time since submission, minus the time the review waited on the submitter.

Pure over an injected `now`, so tests move time by hand; the service passes `Clock` implementations.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from weighbridge.workflow.states import DEADLINE_DAYS

Clock = Callable[[], datetime]
"""Anything that returns the current time, timezone-aware (UTC)."""


def system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Pause:
    start: datetime
    end: datetime | None  # None: still paused


@dataclass(frozen=True)
class Deadline:
    started_at: datetime
    active: timedelta  # time counted against the deadline
    paused_for: timedelta
    paused: bool
    due_at: datetime  # when the deadline falls if the clock runs from now on (moves while paused)
    limit_days: int

    @property
    def days_left(self) -> float:
        return (timedelta(days=self.limit_days) - self.active) / timedelta(days=1)

    @property
    def overdue(self) -> bool:
        return self.days_left < 0


def deadline(started_at: datetime, pauses: Sequence[Pause], now: datetime, limit_days: int = DEADLINE_DAYS) -> Deadline:
    """Where a review stands against its deadline at `now`.

    Args:
        pauses: in order; only the last may be open. Parts of a pause before `started_at` or after
            `now` do not count (a clock is never credited with time that has not passed).
    """
    paused_for = timedelta(0)
    for p in pauses:
        start = max(p.start, started_at)
        end = min(p.end or now, now)
        if end > start:
            paused_for += end - start
    elapsed = max(now - started_at, timedelta(0))
    active = elapsed - paused_for
    paused = bool(pauses) and pauses[-1].end is None
    due_at = started_at + timedelta(days=limit_days) + paused_for
    return Deadline(started_at, active, paused_for, paused, due_at, limit_days)
