"""Deadline escalation: the threshold logic by hand, then `weighbridge reviews` with real reviews
whose clocks started weeks ago, its exit code and the settings file's hook."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.workflow_team import MODEL, Team, make_team
from weighbridge.cli import app
from weighbridge.store.workflow_schema import ReviewRow
from weighbridge.workflow.clock import Pause, deadline
from weighbridge.workflow.escalation import Level, escalate, escalations, level_of, worst
from weighbridge.workflow.service import ReviewView, act, open_review
from weighbridge.workflow.states import Action, Event, ReviewStatus, State

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)
WARN = (7.0, 2.0)


# -- the logic, by hand -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("days_left", "level", "threshold"),
    [
        (20.0, Level.NONE, None),
        (7.01, Level.NONE, None),
        (7.0, Level.WARNING, 7.0),  # "at or under": the day the settings name, not a day later
        (3.5, Level.WARNING, 7.0),
        (2.0, Level.URGENT, 2.0),
        (0.0, Level.URGENT, 2.0),
        (-0.01, Level.OVERDUE, None),
    ],
)
def test_levels_at_and_between_the_thresholds(days_left: float, level: Level, threshold: float | None) -> None:
    assert level_of(days_left, WARN) == (level, threshold)


def test_thresholds_in_any_order_one_threshold_or_none() -> None:
    assert level_of(1.0, (2, 7, 2)) == (Level.URGENT, 2)
    assert level_of(5.0, (2, 7)) == (Level.WARNING, 7)
    assert level_of(5.0, (7,)) == (Level.URGENT, 7)  # the only threshold is also the last
    assert level_of(5.0, (14, 7, 2)) == (Level.WARNING, 7)
    assert level_of(1.0, ()) == (Level.NONE, None)  # no thresholds: only overdue escalates
    assert level_of(-1.0, ()) == (Level.OVERDUE, None)


def test_escalation_messages() -> None:
    soon = escalate("3f2a1b2c-aaaa", "tiny-model", deadline(T0, [], T0 + 28.4 * DAY), WARN)
    assert soon is not None and soon.level is Level.URGENT
    assert soon.message == (
        "review 3f2a1b2c (tiny-model) has 1.6 days left (due 2026-01-31) — under the 2-day threshold"
    )
    late = escalate("3f2a1b2c-aaaa", "tiny-model", deadline(T0, [], T0 + 31.5 * DAY), WARN)
    assert late is not None and late.message == "review 3f2a1b2c (tiny-model) is 1.5 days overdue (was due 2026-01-31)"
    paused = escalate(
        "3f2a1b2c-aaaa", "m", deadline(T0, [Pause(T0 + 24 * DAY, None)], T0 + 40 * DAY), (7.5,), paused=True
    )
    assert paused is not None and paused.message.endswith(
        "(due 2026-02-16) (clock paused) — under the 7.5-day threshold"
    )
    assert escalate("x", "m", deadline(T0, [], T0 + DAY), WARN) is None


def view(review_id: str, days_left: float, state: State = State.SUBMITTED) -> ReviewView:
    opened = Event(0, "sam", Action.OPEN, None, State.SUBMITTED, {})
    status = ReviewStatus(state, False, None, ())
    return ReviewView(
        review_id, "s", "m", None, status, deadline(T0, [], T0 + (30 - days_left) * DAY), (opened,), (T0,)
    )


def test_only_open_reviews_escalate_most_urgent_first() -> None:
    views = [
        view("warn", 6),
        view("fine", 20),
        view("late", -3),
        view("urgent", 1),
        view("closed", -9, State.WITHDRAWN),
        view("decided", 4, State.DECIDED),  # decided is still open: the notice is not out yet
    ]
    found = escalations(views, WARN)
    assert [e.review_id for e in found] == ["late", "urgent", "decided", "warn"]
    assert worst(found) is Level.OVERDUE and worst(found[-2:]) is Level.WARNING and worst([]) is Level.NONE


# -- `weighbridge reviews` ----------------------------------------------------------------------------


@pytest.fixture
def team(tmp_path: Path) -> Team:
    return make_team(tmp_path)


def reviews_with_days_left(team: Team, *days_left: float) -> list[str]:
    """One open review per value, its 30-day clock started long enough ago to leave that many days."""
    ids = []
    for i, left in enumerate(days_left):
        submission = team.submission_id if i == 0 else team.store.add_submission(MODEL, source=f"/m/v{i}.gguf").id
        review = open_review(team.store, team["sam"], submission).id
        with team.store.session() as s:
            s.get_one(ReviewRow, review).clock_started_at = datetime.now(UTC) - (30 - left) * DAY
        ids.append(review)
    return ids


def reviews_cli(team: Team, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["reviews", "--db", str(team.store.engine.url), *args], env={"COLUMNS": "200"})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def settings(home: Path, text: str) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(text)


def test_listing_escalates_and_exits_with_the_worst_level(team: Team) -> None:
    fine, warn, urgent, late = reviews_with_days_left(team, 20, 5.5, 1.5, -2.5)
    code, out, _ = reviews_cli(team)
    assert code == Level.OVERDUE == 5
    lines = [line for line in out.splitlines() if line.startswith("ESCALATION:")]
    assert len(lines) == 3, out
    assert lines[0].startswith(f"ESCALATION: review {late[:8]} (tiny-model) is 2.5 days overdue (was due ")
    assert lines[1].startswith(f"ESCALATION: review {urgent[:8]} (tiny-model) has 1.5 days left (due ")
    assert lines[1].endswith("— under the 2-day threshold")
    assert lines[2].startswith(f"ESCALATION: review {warn[:8]}") and lines[2].endswith("under the 7-day threshold")
    assert fine[:8] in out and fine[:8] not in "".join(lines)  # listed, not escalated

    act(team.store, team["sam"], late, Action.WITHDRAW)
    assert reviews_cli(team)[0] == Level.URGENT == 4
    act(team.store, team["sam"], urgent, Action.WITHDRAW)
    assert reviews_cli(team)[0] == Level.WARNING == 3
    act(team.store, team["sam"], warn, Action.WITHDRAW)
    code, out, _ = reviews_cli(team)
    assert code == 0 and "ESCALATION" not in out


def test_thresholds_and_hook_come_from_the_settings_file(team: Team, isolated_home: Path, tmp_path: Path) -> None:
    log = tmp_path / "hook.log"
    hook = 'printf "%s|%s|%s|%s\\n" "$WEIGHBRIDGE_REVIEW" "$WEIGHBRIDGE_LEVEL" "$WEIGHBRIDGE_DAYS_LEFT" '
    hook += f'"$WEIGHBRIDGE_ALERT" >> {log}'
    settings(isolated_home, f"[deadlines]\nwarn_days = [12, 3]\nhook = {json.dumps(hook)}\n")
    fine, warn, urgent = reviews_with_days_left(team, 20, 10.4, 2.6)

    code, out, err = reviews_cli(team)
    assert code == Level.URGENT, out + err
    assert "under the 3-day threshold" in out and "under the 12-day threshold" in out
    calls = [line.split("|") for line in log.read_text().splitlines()]
    assert [c[:3] for c in calls] == [[urgent, "urgent", "2.6"], [warn, "warning", "10.4"]]
    assert calls[0][3].startswith(f"ESCALATION: review {urgent[:8]} (tiny-model) has 2.6 days left (due ")
    assert calls[0][3].endswith("— under the 3-day threshold")
    assert fine not in log.read_text()

    log.unlink()
    assert reviews_cli(team, "--no-hook")[0] == Level.URGENT
    assert not log.exists()


def test_a_failing_hook_warns_and_changes_nothing(team: Team, isolated_home: Path) -> None:
    settings(isolated_home, '[deadlines]\nhook = "echo mail server down >&2; exit 7"\n')
    (review,) = reviews_with_days_left(team, 1)
    code, out, err = reviews_cli(team)
    assert code == Level.URGENT
    assert f"ESCALATION: review {review[:8]}" in out
    assert f"warning: the deadline hook for review {review[:8]} exited 7: mail server down" in err


def test_a_wrong_setting_is_an_error_not_silence(team: Team, isolated_home: Path) -> None:
    settings(isolated_home, "[deadlines]\nwarn_dayz = [7]\n")
    reviews_with_days_left(team, 1)
    code, _, err = reviews_cli(team)
    assert code == 1 and "warn_dayz" in err
