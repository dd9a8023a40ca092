"""The reviewer organisation's Ed25519 key: signs ledger checkpoints and public notices.

Kept as a PKCS#8 PEM under $WEIGHBRIDGE_HOME (`org-key.pem`, mode 0600) with its public half beside
it (`org-key.pub.pem`, so verifying needs no passphrase). With WEIGHBRIDGE_ORG_PASSPHRASE set the
private key is encrypted with it (cryptography's best available PKCS#8 encryption); without it a
single local user gets an unencrypted key on first use, and is told so — the quick path needs no
set-up, an agency sets the passphrase.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from weighbridge.errors import WeighbridgeError
from weighbridge.ledger.signing import KeySigner, Signer
from weighbridge.store.db import default_home

PASSPHRASE_ENV = "WEIGHBRIDGE_ORG_PASSPHRASE"
KEY_FILE = "org-key.pem"
PUBLIC_FILE = "org-key.pub.pem"


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def organisation_key_path(home: Path | None = None) -> Path:
    return (home or default_home()) / KEY_FILE


def organisation_signer(home: Path | None = None, *, notice: Callable[[str], None] = _stderr) -> Signer:
    """The organisation's signer, created on first use (said so through `notice`).

    Raises:
        WeighbridgeError: the key is encrypted and the passphrase is missing or wrong, or the file
            is not an Ed25519 private key.
    """
    path = organisation_key_path(home)
    passphrase = os.environ.get(PASSPHRASE_ENV) or None
    if not path.exists():
        _create(path, passphrase, notice)
    return KeySigner(_load(path, passphrase, notice))


def organisation_public_key(home: Path | None = None) -> bytes:
    """The raw 32-byte public key (from the public file when present: no passphrase needed)."""
    public_path = (home or default_home()) / PUBLIC_FILE
    if public_path.exists():
        key = serialization.load_pem_public_key(public_path.read_bytes())
        if not isinstance(key, Ed25519PublicKey):
            raise WeighbridgeError(f"{public_path} is not an Ed25519 public key", "Restore it from org-key.pem")
        return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return organisation_signer(home).public_key


def _create(path: Path, passphrase: str | None, notice: Callable[[str], None]) -> None:
    key = Ed25519PrivateKey.generate()
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase.encode()) if passphrase else serialization.NoEncryption()
    )
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: two processes starting at once must not each create (and use) a different key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    (path.parent / PUBLIC_FILE).write_bytes(public)
    how = (
        f"encrypted with {PASSPHRASE_ENV}"
        if passphrase
        else f"not passphrase-protected: set {PASSPHRASE_ENV} before first use to protect it"
    )
    notice(f"Created the organisation signing key {path} ({how}).")


def _load(path: Path, passphrase: str | None, notice: Callable[[str], None]) -> Ed25519PrivateKey:
    data = path.read_bytes()
    try:
        key = serialization.load_pem_private_key(data, passphrase.encode() if passphrase else None)
    except TypeError:
        if passphrase is None:
            raise WeighbridgeError(
                f"The organisation key {path} is encrypted", f"Set {PASSPHRASE_ENV} to its passphrase"
            ) from None
        # A passphrase was given but the key was created without one (quick path): still usable.
        key = serialization.load_pem_private_key(data, None)
        notice(f"Note: the organisation key {path} is not encrypted; {PASSPHRASE_ENV} is not used for it.")
    except ValueError:
        if passphrase is None:
            raise WeighbridgeError(f"{path} is not a readable private key", "Restore it from a backup") from None
        raise WeighbridgeError(
            f"Wrong {PASSPHRASE_ENV} for the organisation key {path}", "Set the passphrase it was created with"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise WeighbridgeError(f"{path} is not an Ed25519 key", "Move it away; a new key is created on next use")
    with contextlib.suppress(OSError):
        _ensure_public(path, key)
    return key


def _ensure_public(path: Path, key: Ed25519PrivateKey) -> None:
    public_path = path.parent / PUBLIC_FILE
    if not public_path.exists():
        public = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        public_path.write_bytes(public)
