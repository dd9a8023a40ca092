"""The organisation key: created once on first use, protected by a passphrase when one is set."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from weighbridge.errors import WeighbridgeError
from weighbridge.ledger.signing import verify_signature
from weighbridge.services.orgkey import (
    KEY_FILE,
    PASSPHRASE_ENV,
    PUBLIC_FILE,
    organisation_public_key,
    organisation_signer,
)


def test_quick_path_creates_one_private_key_and_says_so(isolated_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)
    notices: list[str] = []
    signer = organisation_signer(notice=notices.append)
    path = isolated_home / KEY_FILE
    assert len(notices) == 1 and str(path) in notices[0] and "not passphrase-protected" in notices[0]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert b"ENCRYPTED" not in path.read_bytes()
    again = organisation_signer(notice=notices.append)
    assert again.key_id == signer.key_id and len(notices) == 1  # the same key, said once
    assert organisation_public_key() == signer.public_key
    assert verify_signature(signer.public_key, signer.sign(b"statement"), b"statement")


def test_passphrase_encrypts_the_key_and_a_wrong_one_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, "correct horse battery staple")
    notices: list[str] = []
    signer = organisation_signer(tmp_path, notice=notices.append)
    assert "encrypted with" in notices[0]
    assert b"ENCRYPTED PRIVATE KEY" in (tmp_path / KEY_FILE).read_bytes()
    assert organisation_signer(tmp_path).key_id == signer.key_id

    monkeypatch.setenv(PASSPHRASE_ENV, "s3cr3t-but-not-this-one")
    with pytest.raises(WeighbridgeError, match=f"Wrong {PASSPHRASE_ENV}") as info:
        organisation_signer(tmp_path)
    assert "s3cr3t" not in info.value.message  # the secret is not echoed
    monkeypatch.delenv(PASSPHRASE_ENV)
    with pytest.raises(WeighbridgeError, match=f"is encrypted. Set {PASSPHRASE_ENV}"):
        organisation_signer(tmp_path)
    # Verifiers need no passphrase: the public half is kept beside it.
    assert organisation_public_key(tmp_path) == signer.public_key
    (tmp_path / PUBLIC_FILE).unlink()
    with pytest.raises(WeighbridgeError):
        organisation_public_key(tmp_path)


def test_a_file_that_is_not_a_key_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)
    (tmp_path / KEY_FILE).write_text("not a key")
    with pytest.raises(WeighbridgeError, match="not a readable private key"):
        organisation_signer(tmp_path)
