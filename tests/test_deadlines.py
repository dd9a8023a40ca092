"""The 30-day clock with time under the test's control."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from weighbridge.workflow.clock import Pause, deadline

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)


def test_days_left_counts_down_and_goes_overdue() -> None:
    assert deadline(T0, [], T0).days_left == 30
    assert deadline(T0, [], T0 + 29.5 * DAY).days_left == 0.5
    late = deadline(T0, [], T0 + 31 * DAY)
    assert late.overdue and late.days_left == -1
    assert late.due_at == T0 + 30 * DAY


def test_paused_time_is_not_counted() -> None:
    open_pause = deadline(T0, [Pause(T0 + 10 * DAY, None)], T0 + 40 * DAY)
    assert open_pause.paused and open_pause.days_left == 20 and not open_pause.overdue
    resumed = deadline(T0, [Pause(T0 + 10 * DAY, T0 + 15 * DAY)], T0 + 34 * DAY)
    assert not resumed.paused and resumed.days_left == 1 and resumed.due_at == T0 + 35 * DAY
    assert deadline(T0, [Pause(T0 + 10 * DAY, T0 + 15 * DAY)], T0 + 36 * DAY).overdue


def test_pause_before_start_or_in_the_future_earns_nothing() -> None:
    assert deadline(T0, [Pause(T0 - 5 * DAY, T0 + DAY)], T0 + 2 * DAY).days_left == 29
    assert deadline(T0, [Pause(T0 + 5 * DAY, T0 + 9 * DAY)], T0 + 3 * DAY).days_left == 27
