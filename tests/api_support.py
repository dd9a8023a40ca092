"""A team of single-role users on a store (SQLite, or the test PostgreSQL server), each with a
login password and a key file in the keys folder, and an API client over it: the API tests' set-up.

The users' key passphrase is their password, so a login needs only the two fields; hashing is made
cheap (argon2 at its minimum cost) because the tests log in hundreds of times, not because the
default is wrong.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from weighbridge.api import ApiSettings, Argon2Cost, create_app
from weighbridge.domain import Manifest, ModelFile, ModelRef
from weighbridge.services.accounts import set_password
from weighbridge.services.identity import Actor, add_user, current_actor
from weighbridge.store.db import Store

PASSWORD = "correct horse battery staple"
CHEAP = Argon2Cost(time_cost=1, memory_kib=8, parallelism=1)
MODEL = ModelRef(
    name="tiny-model",
    format="gguf",
    manifest=Manifest((ModelFile("tiny.gguf", "ab" * 32, 1234),)),
    path="/models/tiny.gguf",
)
# One user per role, named after it, plus `ovr` (evaluator and admin) who may override a gate.
TEAM: dict[str, list[str]] = {
    "sam": ["submitter"],
    "eve": ["evaluator"],
    "ann": ["approver"],
    "bob": ["approver"],
    "carl": ["approver"],
    "aud": ["auditor"],
    "adm": ["admin"],
    "ovr": ["evaluator", "admin"],
}
# The single-role user standing for each role in the authorization matrix.
ROLE_USER = {"submitter": "sam", "evaluator": "eve", "approver": "ann", "auditor": "aud", "admin": "adm"}


@dataclass
class ApiTeam:
    store: Store
    app: FastAPI
    client: TestClient
    admin: Actor
    submission_id: str
    settings: ApiSettings

    def login(self, name: str, password: str = PASSWORD) -> dict[str, str]:
        """Authorization headers of a fresh session as `name`."""
        r = self.client.post("/api/v1/auth/login", json={"username": name, "password": password})
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['token']}"}


def store_url(kind: str, tmp: Path, request: pytest.FixtureRequest) -> str:
    if kind == "postgres":
        server = request.getfixturevalue("postgres_server")
        return str(server.create_database(f"api_{uuid.uuid4().hex[:12]}"))
    return f"sqlite:///{tmp / 'api.db'}"


def make_api_team(url: str, tmp: Path, **settings: object) -> Iterator[ApiTeam]:
    store = Store(url)
    admin = current_actor(store, lambda _: None)  # the bootstrap local admin, every role
    for name, roles in TEAM.items():
        add_user(store, admin, name, roles, PASSWORD)  # key file in $WEIGHBRIDGE_HOME/keys/NAME.pem
        set_password(store, admin, name, PASSWORD, CHEAP.hasher())
    submission = store.add_submission(MODEL, source="/models/tiny.gguf")
    intake = tmp / "intake"
    intake.mkdir()
    config = ApiSettings(argon2=CHEAP, intake_root=intake, notices_dir=tmp / "notices", login_attempts=10_000)
    config = ApiSettings(**{**config.__dict__, **settings})
    app = create_app(store, config)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield ApiTeam(store, app, client, admin, submission.id, config)
    store.close()
