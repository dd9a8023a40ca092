"""Custody access control, key location and key rotation.

Plaintext is only for a role that may evaluate, with a purpose, and the log says who, with which
roles and why; the quick path's key never sits beside the ciphertext; rotating the master key
re-wraps every data key in one transaction, after which only the new key opens the store.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from tests.test_custody import (  # store, root and tmp_root: tests/custody_fixtures.py
    CHEAP_KDF,
    CHUNK,
    PASS,
    VaultFactory,
    counts,
    person,
    snapshot,
    submit_dir,
)
from tests.workflow_team import PASSPHRASE, make_team
from weighbridge.domain import ModelRef
from weighbridge.errors import WeighbridgeError
from weighbridge.intake.custody import KeyFile, KeySource, Passphrase
from weighbridge.intake.manifest import build_manifest
from weighbridge.services import custody as custody_service
from weighbridge.services.custody import (
    CustodyVault,
    default_key_dir,
    default_key_file,
    legacy_key_file,
    local_key,
)
from weighbridge.services.intake import open_vault, take_in
from weighbridge.services.ledger import read_entries
from weighbridge.store.custody_schema import CustodyKeyRow, CustodyObjectRow
from weighbridge.store.db import Store
from weighbridge.workflow.states import Role
from weighbridge.workflow.verify import entry_signed_by

ADMIN = person("adm", Role.ADMIN)
EVE = person("eve", Role.EVALUATOR)


@pytest.fixture
def vault(store: Store, root: Path, tmp_root: Path) -> VaultFactory:
    """As in test_custody: a cheap KDF, small chunks, `alice` for deposits without an Actor."""

    def make(source: KeySource = PASS, **kw: Any) -> CustodyVault:
        options: dict[str, Any] = {"kdf": CHEAP_KDF, "chunk_bytes": CHUNK, "tmp_root": tmp_root, "actor": "alice"}
        return CustodyVault(store, root, source, **(options | kw))

    return make


@pytest.fixture(autouse=True)
def no_key_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("WEIGHBRIDGE_PASSPHRASE", "WEIGHBRIDGE_KEY_FILE", "WEIGHBRIDGE_NEW_PASSPHRASE"):
        monkeypatch.delenv(name, raising=False)


def key_file(path: Path) -> KeyFile:
    path.write_bytes(os.urandom(32))
    return KeyFile(path)


def wrapped_keys(store: Store) -> dict[tuple[str, int], bytes]:
    with store.session() as s:
        return {(o.submission_id, o.n): o.wrapped_data_key for o in s.scalars(select(CustodyObjectRow))}


def key_record(store: Store) -> tuple[str, str, bytes, bytes]:
    with store.session() as s:
        row = s.get_one(CustodyKeyRow, 1)
        return row.kind, row.kdf, row.salt, row.check_value


# -- who may decrypt ------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.SUBMITTER, Role.APPROVER, Role.AUDITOR, Role.ADMIN])
def test_materialize_without_an_evaluating_role_is_refused_and_decrypts_nothing(
    store: Store, tmp_path: Path, tmp_root: Path, vault: VaultFactory, role: Role
) -> None:
    row, files = submit_dir(store, tmp_path / "m", {"a.bin": os.urandom(2 * CHUNK)})
    v = vault()
    v.deposit(row.id, files)
    ledger_before = len(read_entries(store))
    outsider = person("olga", role)
    with pytest.raises(WeighbridgeError) as info, v.materialize(row.id, "evaluate", outsider):
        pytest.fail("the block must not run")
    assert info.value.problem == (
        f"olga may not decrypt the weights of submission {row.id[:8]}: that needs the role evaluator "
        f"(olga has {role.value})"
    )
    assert not [p for p in tmp_root.rglob("*") if p.is_dir() and p != v.lease_root]  # no lease directory
    assert not [p for p in tmp_root.rglob("*") if p.is_file()]
    actions = [(e.action, e.actor) for e in v.access_log(row.id)]
    assert actions == [("deposit", "alice"), ("denied", "olga")]  # refused attempts are seen, not decrypted
    assert v.access_log(row.id)[-1].detail["roles"] == [role.value]
    assert len(read_entries(store)) == ledger_before  # nothing happened to the submission


def test_materialize_logs_and_signs_actor_roles_and_purpose(store: Store, tmp_path: Path, vault: VaultFactory) -> None:
    row, files = submit_dir(store, tmp_path / "m", {"a.bin": os.urandom(CHUNK)})
    v = vault()
    v.deposit(row.id, files, actor=ADMIN)
    both = person("eva", Role.EVALUATOR, Role.APPROVER)
    with v.materialize(row.id, "evaluate hazards suite", both) as folder:
        assert (folder / "a.bin").is_file()
    log = v.access_log(row.id)
    assert [(e.action, e.actor, e.purpose) for e in log] == [
        ("deposit", "adm", "intake"),  # an Actor passed to deposit names the access-log row too
        ("materialize", "eva", "evaluate hazards suite"),
        ("release", "eva", "evaluate hazards suite"),
    ]
    assert log[1].detail == {"files": ["a.bin"], "roles": ["approver", "evaluator"]}
    entries = {e.action: e for e in read_entries(store, subject=row.id)}
    assert entries["custody.deposit"].actor == "adm" and entry_signed_by(
        entries["custody.deposit"], ADMIN.signer.public_key
    )
    materialized = entries["custody.materialize"]
    assert materialized.actor == "eva" and entry_signed_by(materialized, both.signer.public_key)
    evidence = json.loads(materialized.evidence_json or "{}")
    assert evidence == {"files": ["a.bin"], "roles": ["approver", "evaluator"], "purpose": "evaluate hazards suite"}


# -- where the quick path's key lives -------------------------------------------------------------


def test_default_key_is_created_outside_the_data_directory_and_said_once(
    isolated_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    notices: list[str] = []
    with pytest.raises(WeighbridgeError, match="no terminal"):
        local_key(notices.append, create=False)  # reading commands never create a key
    key = local_key(notices.append)
    assert key.origin == "default" and key.path == default_key_file()
    assert key.path.parent == tmp_path / "keys-outside"  # WEIGHBRIDGE_KEY_DIR, from conftest
    assert key.path.name.startswith("custody-") and len(key.path.name) == len("custody-123456789abc.key")
    assert not key.path.resolve().is_relative_to(isolated_home.resolve())
    assert len(key.path.read_bytes()) == 32 and key.source == KeyFile(key.path)
    assert stat.S_IMODE(key.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(key.path.parent.stat().st_mode) == 0o700
    (notice,) = notices
    assert f"Created the custody key {key.path}" in notice and "outside the data directory" in notice
    assert "WEIGHBRIDGE_PASSPHRASE" in notice and "WEIGHBRIDGE_KEY_FILE" in notice
    assert local_key(notices.append, create=False) == key and len(notices) == 1  # said once per process
    assert not legacy_key_file().exists() and not (isolated_home.exists() and list(isolated_home.rglob("*.key")))

    monkeypatch.setenv("WEIGHBRIDGE_HOME", str(tmp_path / "another-store"))
    assert default_key_file() != key.path  # two stores never share a key
    assert default_key_file().parent == key.path.parent


def test_key_dir_falls_back_to_xdg_config_home_then_dot_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WEIGHBRIDGE_KEY_DIR")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert default_key_dir() == tmp_path / "xdg" / "weighbridge"
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative/ignored")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert default_key_dir() == tmp_path / "user" / ".config" / "weighbridge"


def test_intake_with_the_default_key_then_verify_finds_it(isolated_home: Path, tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'intake.db'}")
    try:
        folder = tmp_path / "model"
        folder.mkdir()
        (folder / "weights.bin").write_bytes(os.urandom(3000))
        model = ModelRef("m", "directory", build_manifest([folder / "weights.bin"], root=folder), path=str(folder))
        notices: list[str] = []
        row = take_in(store, model, vault=open_vault(store, notices.append)).submission
        assert any(f"custody key {default_key_file()}" in n for n in notices)
        assert not list(isolated_home.rglob("*.key"))
        reader = CustodyVault(store, isolated_home / "custody", local_key(notices.append, create=False).source)
        assert reader.verify(row.id).ok
    finally:
        store.close()


def test_a_legacy_key_beside_the_data_is_still_used_with_a_warning(isolated_home: Path) -> None:
    legacy = legacy_key_file()
    legacy.parent.mkdir(parents=True)
    legacy.write_bytes(os.urandom(32))
    notices: list[str] = []
    key = local_key(notices.append)
    assert (key.origin, key.path, key.source) == ("legacy", legacy, KeyFile(legacy))
    assert not default_key_file().exists()  # not replaced by a new key that opens nothing
    (warning,) = notices
    assert "sits beside the ciphertext" in warning and "weighbridge custody rotate" in warning
    assert f"mv {legacy} {default_key_file()}" in warning

    default_key_file().parent.mkdir(mode=0o700)
    os.rename(legacy, default_key_file())  # what the warning says to do
    legacy.write_bytes(b"a forgotten copy")
    notices.clear()
    key = local_key(notices.append)
    assert key.origin == "default" and key.path == default_key_file()
    assert f"rm {legacy}" in notices[0]


# -- rotation ---------------------------------------------------------------------------------------


def deposit_two(store: Store, tmp_path: Path, v: CustodyVault) -> list[str]:
    first, files = submit_dir(store, tmp_path / "m1", {"a.bin": os.urandom(3 * CHUNK), "b.bin": os.urandom(10)})
    v.deposit(first.id, files)
    second, files = submit_dir(store, tmp_path / "m2", {"c.bin": os.urandom(2 * CHUNK + 1)})
    v.deposit(second.id, files)
    return [first.id, second.id]


def test_rotate_rewraps_every_key_and_retires_the_old_one(
    store: Store, root: Path, tmp_path: Path, vault: VaultFactory
) -> None:
    old, new = key_file(tmp_path / "old.key"), key_file(tmp_path / "new.key")
    v = vault(old)
    ids = deposit_two(store, tmp_path, v)
    blobs, wrapped = snapshot(root), wrapped_keys(store)

    result = v.rotate(new, ADMIN, purpose="annual rotation")
    assert (result.data_keys, result.files) == (2, 3)
    assert snapshot(root) == blobs  # the ciphertext is not rewritten
    rewrapped = wrapped_keys(store)
    assert rewrapped.keys() == wrapped.keys() and all(rewrapped[k] != wrapped[k] for k in wrapped)
    assert rewrapped[(ids[0], 0)] == rewrapped[(ids[0], 1)]  # one data key per submission

    with pytest.raises(WeighbridgeError) as info:
        vault(old).verify(ids[0])
    assert info.value.problem.startswith("The key file does not unlock this custody store: the store's master key")
    assert "rotated on" in info.value.problem and "by adm" in info.value.problem
    fresh = vault(new)
    assert all(fresh.verify(sid).ok for sid in ids)
    with fresh.materialize(ids[1], "evaluate", EVE) as folder:
        assert (folder / "c.bin").read_bytes() == (tmp_path / "m2" / "c.bin").read_bytes()
    assert v.verify(ids[0]).ok  # the rotating vault carries on with the new key

    (entry,) = [e for e in v.access_log() if e.action == "rotate"]
    assert (entry.actor, entry.purpose, entry.submission_id) == ("adm", "annual rotation", None)
    assert entry.detail == {
        "old": {"kind": "keyfile", "kdf": "none", "kdf_params": {}},
        "new": {"kind": "keyfile", "kdf": "none", "kdf_params": {}},
        "data_keys": 2,
        "files": 3,
        "roles": ["admin"],
    }
    (ledger,) = [e for e in read_entries(store) if e.action == "custody.rotate"]
    assert ledger.actor == "adm" and entry_signed_by(ledger, ADMIN.signer.public_key)
    evidence = json.loads(ledger.evidence_json or "{}")
    assert evidence["data_keys"] == 2 and evidence["purpose"] == "annual rotation"
    secrets = [old.path.read_bytes(), new.path.read_bytes(), *key_record(store)[2:]]
    logged = json.dumps(entry.detail).encode() + (ledger.evidence_json or "").encode()
    assert not any(s.hex().encode() in logged or s in logged for s in secrets if s)  # never key material


def test_rotate_between_passphrase_and_key_file(store: Store, tmp_path: Path, vault: VaultFactory) -> None:
    ids = deposit_two(store, tmp_path, vault(PASS))
    new = key_file(tmp_path / "new.key")
    vault(PASS).rotate(new, ADMIN)
    assert key_record(store)[:2] == ("keyfile", "none")
    with pytest.raises(WeighbridgeError, match="locked with a key file, not a passphrase"):
        vault(PASS).verify(ids[0])
    vault(new).rotate(Passphrase("a new passphrase"), ADMIN)
    kind, kdf, salt, _ = key_record(store)
    assert (kind, kdf, len(salt)) == ("passphrase", "scrypt", 16)
    assert all(vault(Passphrase("a new passphrase")).verify(sid).ok for sid in ids)
    with pytest.raises(WeighbridgeError, match="The passphrase does not unlock"):
        vault(PASS).verify(ids[1])
    with pytest.raises(WeighbridgeError, match="The new custody key is the current one"):
        vault(Passphrase("a new passphrase")).rotate(Passphrase("a new passphrase"), ADMIN)


@pytest.mark.parametrize("role", [Role.EVALUATOR, Role.APPROVER, Role.SUBMITTER, Role.AUDITOR])
def test_only_an_admin_may_rotate(store: Store, tmp_path: Path, vault: VaultFactory, role: Role) -> None:
    deposit_two(store, tmp_path, vault())
    before, wrapped = key_record(store), wrapped_keys(store)
    with pytest.raises(
        WeighbridgeError,
        match=f"carl may not rotate the custody key: that needs the role admin \\(carl has {role.value}\\)",
    ):
        vault().rotate(key_file(tmp_path / "new.key"), person("carl", role))
    assert key_record(store) == before and wrapped_keys(store) == wrapped
    assert not [e for e in vault().access_log() if e.action == "rotate"]


def test_a_failure_half_way_through_rotation_leaves_the_old_key_working(
    store: Store, root: Path, tmp_path: Path, vault: VaultFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = key_file(tmp_path / "old.key"), key_file(tmp_path / "new.key")
    ids = deposit_two(store, tmp_path, vault(old))
    before, wrapped, rows = key_record(store), wrapped_keys(store), counts(store)
    real_wrap = custody_service.wrap_data_key
    calls: list[str] = []

    def wrap_then_fail(master: bytes, data_key: bytes, context: bytes) -> bytes:
        calls.append(context.decode())
        if len(calls) == 2:
            raise OSError("disk on fire")  # the second submission
        return real_wrap(master, data_key, context)

    with monkeypatch.context() as patched, pytest.raises(OSError, match="disk on fire"):
        patched.setattr(custody_service, "wrap_data_key", wrap_then_fail)
        vault(old).rotate(new, ADMIN)
    assert len(calls) == 2
    assert key_record(store) == before and wrapped_keys(store) == wrapped and counts(store) == rows
    assert all(vault(old).verify(sid).ok for sid in ids)
    with pytest.raises(WeighbridgeError) as info:
        vault(new).verify(ids[0])
    assert info.value.problem == "The key file does not unlock this custody store"  # no rotation happened
    assert not [e for e in read_entries(store) if e.action == "custody.rotate"]


def test_a_deposit_racing_a_rotation_fails_cleanly(
    store: Store, root: Path, tmp_path: Path, vault: VaultFactory
) -> None:
    old, new = key_file(tmp_path / "old.key"), key_file(tmp_path / "new.key")
    deposit_two(store, tmp_path, vault(old))
    slow = vault(old)
    slow.check_key()  # unlocked with the old key, as a deposit in another process would be
    vault(old).rotate(new, ADMIN)
    row, files = submit_dir(store, tmp_path / "m3", {"d.bin": os.urandom(CHUNK)})
    with pytest.raises(WeighbridgeError, match="rotated while this deposit ran"):
        slow.deposit(row.id, files)
    assert not list((root / row.id).glob("*.wbc"))
    with store.session() as s:
        assert not s.scalars(select(CustodyObjectRow).where(CustodyObjectRow.submission_id == row.id)).all()


def test_rotation_of_a_store_without_custody_is_refused(store: Store, vault: VaultFactory, tmp_path: Path) -> None:
    with pytest.raises(WeighbridgeError, match="nothing to rotate"):
        vault().rotate(key_file(tmp_path / "new.key"), ADMIN)


# -- the command ------------------------------------------------------------------------------------


def test_cli_rotate_to_a_new_key_file_then_to_a_passphrase(
    store: Store, root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from weighbridge.cli import app

    row, _ = submit_dir(store, tmp_path / "m", {"a.bin": os.urandom(3000)})
    db = f"sqlite:///{tmp_path / 'wb.db'}"
    old, new = key_file(tmp_path / "old.key").path, tmp_path / "vault" / "new.key"
    monkeypatch.setenv("WEIGHBRIDGE_KEY_FILE", str(old))
    monkeypatch.setenv("WEIGHBRIDGE_CUSTODY_DIR", str(root))
    runner = CliRunner()
    assert runner.invoke(app, ["custody", "deposit", row.id[:8], "--db", db]).exit_code == 0

    res = runner.invoke(app, ["custody", "rotate", "--db", db])
    assert res.exit_code == 1 and "Say what the new key is" in res.output
    res = runner.invoke(app, ["custody", "rotate", "--new-key-file", str(new), "--create", "--db", db])
    assert res.exit_code == 0, res.output
    assert "1 data key(s) of 1 file(s) re-wrapped" in res.output and f"WEIGHBRIDGE_KEY_FILE={new}" in res.output
    assert len(new.read_bytes()) == 32 and stat.S_IMODE(new.stat().st_mode) == 0o600
    res = runner.invoke(app, ["custody", "verify", row.id[:8], "--db", db])
    assert res.exit_code == 1 and "rotated on" in res.output, res.output

    monkeypatch.setenv("WEIGHBRIDGE_KEY_FILE", str(new))
    res = runner.invoke(app, ["custody", "verify", row.id[:8], "--db", db])
    assert res.exit_code == 0 and "intact" in res.output, res.output
    res = runner.invoke(app, ["custody", "rotate", "--new-key-file", str(new), "--create", "--db", db])
    assert res.exit_code == 1 and "already exists" in res.output

    monkeypatch.setenv("WEIGHBRIDGE_NEW_PASSPHRASE", "the new one")
    res = runner.invoke(app, ["custody", "rotate", "--new-passphrase", "--db", db])
    assert res.exit_code == 0 and "WEIGHBRIDGE_PASSPHRASE" in res.output, res.output
    monkeypatch.delenv("WEIGHBRIDGE_KEY_FILE")
    monkeypatch.setenv("WEIGHBRIDGE_PASSPHRASE", "the new one")
    assert runner.invoke(app, ["custody", "verify", row.id[:8], "--db", db]).exit_code == 0
    res = runner.invoke(app, ["custody", "log", "--json", "--db", db])
    rotations = [json.loads(line) for line in res.output.splitlines() if '"rotate"' in line]
    assert [(r["actor"], r["detail"]["new"]["kind"]) for r in rotations] == [
        ("local-admin", "keyfile"),
        ("local-admin", "passphrase"),
    ]


def test_cli_rotate_moves_a_legacy_key_out_of_the_data_directory(
    isolated_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from weighbridge.cli import app

    legacy = legacy_key_file()
    legacy.parent.mkdir(parents=True)
    legacy.write_bytes(os.urandom(32))
    store = Store(f"sqlite:///{isolated_home / 'weighbridge.db'}")
    try:
        row, files = submit_dir(store, tmp_path / "m", {"a.bin": os.urandom(2000)})
        CustodyVault(store, isolated_home / "custody", KeyFile(legacy)).deposit(row.id, files)
    finally:
        store.close()
    runner = CliRunner()
    res = runner.invoke(app, ["custody", "rotate"])
    assert res.exit_code == 0, res.output
    assert "sits beside the ciphertext" in res.output and f"rm {legacy}" in res.output
    assert default_key_file().exists()
    res = runner.invoke(app, ["custody", "verify", row.id[:8]])
    assert res.exit_code == 0 and "intact" in res.output, res.output
    legacy.unlink()
    assert runner.invoke(app, ["custody", "verify", row.id[:8]]).exit_code == 0


def test_cli_rotate_is_refused_to_a_non_admin_and_leaves_no_key_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from weighbridge.cli import app

    team = make_team(tmp_path)
    try:
        row, files = submit_dir(team.store, tmp_path / "m", {"a.bin": os.urandom(2000)})
        CustodyVault(team.store, tmp_path / "custody", PASS, kdf=CHEAP_KDF).deposit(row.id, files, actor=team["adm"])
    finally:
        team.store.close()
    monkeypatch.setenv("WEIGHBRIDGE_PASSPHRASE", "correct horse battery staple")
    monkeypatch.setenv("WEIGHBRIDGE_USER_KEY", str(team.keys["eve"]))
    monkeypatch.setenv("WEIGHBRIDGE_USER_PASSPHRASE", PASSPHRASE)
    db = f"sqlite:///{tmp_path / 'team.db'}"
    new = tmp_path / "new.key"
    res = CliRunner().invoke(
        app,
        [
            "custody",
            "rotate",
            "--new-key-file",
            str(new),
            "--create",
            "--custody-dir",
            str(tmp_path / "custody"),
            "--db",
            db,
        ],
    )
    assert res.exit_code == 1 and "eve may not rotate the custody key" in res.output, res.output
    assert not new.exists()
