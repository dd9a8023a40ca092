"""Actions outside the workflow (submission, findings, custody access) land in the ledger, signed by the
acting user."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.workflow_team import PASSPHRASE, make_team
from weighbridge.domain import ModelRef
from weighbridge.intake.custody import KdfSpec, Passphrase
from weighbridge.intake.manifest import build_manifest
from weighbridge.services.custody import CustodyVault
from weighbridge.services.intake import take_in
from weighbridge.services.ledger import read_entries
from weighbridge.workflow.verify import entry_signed_by

CHEAP_KDF = KdfSpec("scrypt", {"n": 2**10, "r": 8, "p": 1})


def test_submission_findings_and_custody_access_are_signed_by_the_acting_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    team = make_team(tmp_path)
    monkeypatch.setenv("WEIGHBRIDGE_USER_KEY", str(team.keys["sam"]))
    monkeypatch.setenv("WEIGHBRIDGE_USER_PASSPHRASE", PASSPHRASE)
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "weights.bin").write_bytes(b"\x00" * 4096)
    model = ModelRef("m", "directory", build_manifest([folder / "weights.bin"], root=folder), path=str(folder))
    vault = CustodyVault(team.store, tmp_path / "custody", Passphrase("pw"), kdf=CHEAP_KDF, tmp_root=tmp_path)
    row = take_in(team.store, model, vault=vault).submission
    monkeypatch.setenv("WEIGHBRIDGE_USER_KEY", str(team.keys["eve"]))
    with vault.materialize(row.id, purpose="evaluate", actor=team["eve"]):
        pass
    entries = [e for e in read_entries(team.store) if e.subject == row.id]
    assert [(e.action, e.actor) for e in entries] == [
        ("custody.deposit", "sam"),
        ("submission", "sam"),
        ("findings", "sam"),
        ("custody.materialize", "eve"),
        ("custody.release", "eve"),
    ]
    keys = {"sam": team["sam"].signer.public_key, "eve": team["eve"].signer.public_key}
    assert all(entry_signed_by(e, keys[e.actor]) for e in entries)
    assert row.digest in (entries[1].evidence_json or "")
