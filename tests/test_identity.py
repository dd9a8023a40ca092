"""Identities: key files, passphrases, registration by an admin, first-use local admin."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from tests.workflow_team import PASSPHRASE, make_team
from weighbridge.errors import WeighbridgeError
from weighbridge.services.identity import (
    LOCAL_ADMIN,
    actor_from_key,
    add_user,
    current_actor,
    get_user,
    list_users,
    load_key_file,
    write_key_file,
)
from weighbridge.store.db import Store
from weighbridge.workflow.states import Role
from weighbridge.workflow.verify import verify_users


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'wb.db'}")


def test_first_use_creates_a_local_admin_once_and_says_so(store: Store, isolated_home: Path) -> None:
    said: list[str] = []
    actor = current_actor(store, said.append)
    assert actor.name == LOCAL_ADMIN and actor.roles == frozenset(Role)
    assert len(said) == 1 and "local admin" in said[0]
    key = isolated_home / "keys" / f"{LOCAL_ADMIN}.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(key.with_suffix(".passphrase").stat().st_mode) == 0o600
    assert b"ENCRYPTED PRIVATE KEY" in key.read_bytes()
    assert current_actor(store, said.append).signer.key_id == actor.signer.key_id
    assert len(said) == 1  # no second admin, no second message
    assert [u.name for u in list_users(store)] == [LOCAL_ADMIN]
    assert verify_users(store) == []


def test_key_file_is_encrypted_and_wrong_passphrase_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    signer = write_key_file(path, PASSPHRASE)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_key_file(path, PASSPHRASE).key_id == signer.key_id
    with pytest.raises(WeighbridgeError, match="Wrong passphrase"):
        load_key_file(path, "not it")
    with pytest.raises(WeighbridgeError, match="encrypted and no passphrase"):
        load_key_file(path, None)


def test_cli_acts_as_the_key_given_and_refuses_an_unregistered_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    team = make_team(tmp_path)
    monkeypatch.setenv("WEIGHBRIDGE_USER_KEY", str(team.keys["eve"]))
    monkeypatch.setenv("WEIGHBRIDGE_USER_PASSPHRASE", PASSPHRASE)
    assert current_actor(team.store).name == "eve"
    stranger = tmp_path / "stranger.pem"
    write_key_file(stranger, PASSPHRASE)
    monkeypatch.setenv("WEIGHBRIDGE_USER_KEY", str(stranger))
    with pytest.raises(WeighbridgeError, match="not registered in this store"):
        current_actor(team.store)
    monkeypatch.setenv("WEIGHBRIDGE_USER_KEY", str(team.keys["ann"]))
    monkeypatch.setenv("WEIGHBRIDGE_USER_PASSPHRASE", "wrong")
    with pytest.raises(WeighbridgeError, match="Wrong passphrase"):
        current_actor(team.store)


def test_only_admins_add_users_and_registration_is_verified(tmp_path: Path) -> None:
    team = make_team(tmp_path)
    with pytest.raises(WeighbridgeError, match="needs the admin role"):
        add_user(team.store, team["ann"], "mallory", ["approver"], PASSPHRASE, tmp_path / "m.pem")
    assert not (tmp_path / "m.pem").exists()
    add_user(team.store, team["adm"], "dora", ["approver", "evaluator"], PASSPHRASE, tmp_path / "d.pem")
    assert get_user(team.store, "dora").roles == {Role.APPROVER, Role.EVALUATOR}
    assert actor_from_key(team.store, tmp_path / "d.pem", PASSPHRASE).name == "dora"
    assert verify_users(team.store) == []


def test_a_user_row_written_into_the_database_is_detected(tmp_path: Path) -> None:
    team = make_team(tmp_path)
    forged = write_key_file(tmp_path / "forged.pem", PASSPHRASE)
    with team.store.engine.begin() as conn:
        conn.exec_driver_sql(
            "UPDATE users SET public_key = ?, key_id = ? WHERE name = 'ann'", (forged.public_key, forged.key_id)
        )
        conn.exec_driver_sql("UPDATE users SET roles = 'admin,approver' WHERE name = 'bob'")
    problems = verify_users(team.store)
    assert any("user ann" in p for p in problems) and any("user bob" in p for p in problems)


def test_profile_selects_a_key_under_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    team = make_team(tmp_path)
    add_user(team.store, team["adm"], "pat", ["auditor"], PASSPHRASE)  # default: $WEIGHBRIDGE_HOME/keys/pat.pem
    monkeypatch.setenv("WEIGHBRIDGE_USER", "pat")
    monkeypatch.setenv("WEIGHBRIDGE_USER_PASSPHRASE", PASSPHRASE)
    assert current_actor(team.store).name == "pat"
