"""Reading and writing the organisation's public key as a verifier receives it.

A hosting service gets the key out of band (a web page, a repository); it may arrive as a PEM file
(what `cryptography` and OpenSSL write) or as the 64 hex characters of the raw key. Both are read.
"""

from __future__ import annotations

import re
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from weighbridge.errors import WeighbridgeError

__all__ = ["load_public_key", "public_key_pem"]


def load_public_key(path: Path) -> bytes:
    """The raw 32-byte Ed25519 key in `path` (PEM SubjectPublicKeyInfo or 64 hex characters)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise WeighbridgeError(
            f"Cannot read the public key {path}: {exc.strerror}", "Give the key file's path"
        ) from None
    text = data.strip()
    if re.fullmatch(rb"[0-9a-fA-F]{64}", text):
        return bytes.fromhex(text.decode("ascii"))
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError:
        key = None
    if not isinstance(key, Ed25519PublicKey):
        raise WeighbridgeError(
            f"{path} is not an Ed25519 public key",
            "Give a PEM public key (BEGIN PUBLIC KEY) or the key's 64 hex characters",
        )
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key_pem(public_key: bytes) -> str:
    key = Ed25519PublicKey.from_public_bytes(public_key)
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
