"""The 30-day clock with time under the test's control."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.workflow_team import make_team
from weighbridge.workflow.clock import Pause, deadline
from weighbridge.workflow.service import act, find_review, list_reviews, open_review
from weighbridge.workflow.states import Action

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


def test_review_clock_pauses_resumes_and_goes_overdue(tmp_path: Path) -> None:
    team = make_team(tmp_path)
    clock, store = team.clock, team.store
    review = open_review(store, team["sam"], team.submission_id, clock=clock).id
    clock.advance(10)
    act(store, team["eve"], review, Action.PAUSE, {"reason": "card incomplete"}, clock=clock)
    clock.advance(20)  # twenty days waiting on the submitter cost nothing
    (listed,) = list_reviews(store, clock=clock)
    assert listed.status.paused and listed.deadline.days_left == pytest.approx(20)
    act(store, team["sam"], review, Action.RESUME, {"reason": "card sent"}, clock=clock)
    clock.advance(19)
    assert not find_review(store, review, clock).deadline.overdue
    clock.advance(2)
    late = find_review(store, review, clock)
    assert late.deadline.overdue and late.deadline.days_left == pytest.approx(-1)
    assert late.deadline.due_at == late.deadline.started_at + 50 * DAY


def test_closed_reviews_stop_the_clock_and_leave_the_list(tmp_path: Path) -> None:
    team = make_team(tmp_path)
    clock = team.clock
    review = open_review(team.store, team["sam"], team.submission_id, clock=clock).id
    clock.advance(3)
    act(team.store, team["sam"], review, Action.WITHDRAW, None, clock=clock)
    clock.advance(60)
    assert list_reviews(team.store, clock=clock) == []
    (closed,) = list_reviews(team.store, include_closed=True, clock=clock)
    assert closed.deadline.days_left == pytest.approx(27) and not closed.deadline.overdue
