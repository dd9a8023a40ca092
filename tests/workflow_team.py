"""A store with a team of single-role users and a submission, for the workflow tests."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from weighbridge.domain import Manifest, ModelFile, ModelRef
from weighbridge.services.identity import Actor, actor_from_key, add_user, current_actor
from weighbridge.store.db import Store

PASSPHRASE = "correct horse battery staple"
MODEL = ModelRef(
    name="tiny-model",
    format="gguf",
    manifest=Manifest((ModelFile("tiny.gguf", "ab" * 32, 1234),)),
    path="/models/tiny.gguf",
)
# One user per role (two approvers, so a decision can be made), named after their role.
TEAM = {
    "sam": ["submitter"],
    "eve": ["evaluator"],
    "ann": ["approver"],
    "bob": ["approver"],
    "carl": ["approver"],
    "aud": ["auditor"],
    "adm": ["admin"],
}


@dataclass
class FakeTime:
    """A clock the test moves by hand."""

    now: datetime = field(default_factory=lambda: datetime(2026, 3, 1, 9, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, days: float) -> None:
        self.now += timedelta(days=days)


@dataclass
class Team:
    store: Store
    actors: dict[str, Actor]
    keys: dict[str, Path]
    submission_id: str
    clock: FakeTime

    def __getitem__(self, name: str) -> Actor:
        return self.actors[name]


def make_team(tmp: Path, notice: Callable[[str], None] = lambda _: None) -> Team:
    store = Store(f"sqlite:///{tmp / 'team.db'}")
    admin = current_actor(store, notice)  # the bootstrap local admin
    actors: dict[str, Actor] = {"local-admin": admin}  # every role
    keys: dict[str, Path] = {}
    for name, roles in TEAM.items():
        _, path = add_user(store, admin, name, roles, PASSPHRASE, tmp / f"{name}.pem")
        keys[name] = path
        actors[name] = actor_from_key(store, path, PASSPHRASE)
    submission = store.add_submission(MODEL, source="/models/tiny.gguf")
    return Team(store, actors, keys, submission.id, FakeTime(submission.created_at))


def to_findings(team: Team, review: str, steps: int = 4) -> None:
    """Walk a review of the team's file-less submission to `findings` by admin overrides: these tests
    are about people and approvals; the evidence gates have their own (tests/test_evidence_gates.py)."""
    from weighbridge.workflow.service import GATED, advance, find_review
    from weighbridge.workflow.states import ADVANCE

    admin = team["local-admin"]
    for _ in range(steps):
        gated = ADVANCE[find_review(team.store, review).state] in GATED
        reason = "no weights in this test: approvals are the subject" if gated else None
        advance(team.store, admin, review, override=reason)
