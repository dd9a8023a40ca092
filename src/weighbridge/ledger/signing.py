"""Ed25519 signing shared by the ledger, user identities and notices.

One small protocol (`Signer`) so that a ledger entry, a checkpoint and a notice can be signed by
whatever holds the key — a user's passphrase-protected key, the organisation key, a test key —
without those modules knowing how the key is stored.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey


@runtime_checkable
class Signer(Protocol):
    """Anything that can sign bytes with an Ed25519 key."""

    @property
    def key_id(self) -> str:
        """`key_id_of(public_key)`: names the key in entries, checkpoints and notices."""
        ...

    @property
    def public_key(self) -> bytes:
        """The raw 32-byte Ed25519 public key."""
        ...

    def sign(self, message: bytes) -> bytes: ...


def key_id_of(public_key: bytes) -> str:
    """A key's stable name: hex SHA-256 of its raw public bytes (64 hex characters)."""
    return hashlib.sha256(public_key).hexdigest()


@dataclass(frozen=True)
class KeySigner:
    """A `Signer` over an in-memory private key."""

    private_key: Ed25519PrivateKey

    @classmethod
    def generate(cls) -> KeySigner:
        return cls(Ed25519PrivateKey.generate())

    @property
    def public_key(self) -> bytes:
        return self.private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    @property
    def key_id(self) -> str:
        return key_id_of(self.public_key)

    def sign(self, message: bytes) -> bytes:
        return self.private_key.sign(message)


def verify_signature(public_key: bytes, signature: bytes, message: bytes) -> bool:
    """True when `signature` is `public_key`'s Ed25519 signature of `message`; never raises on bad input."""
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True
