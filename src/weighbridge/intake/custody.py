"""Encryption at rest for submitted weights: chunked AES-256-GCM under a wrapped per-submission key.

Pure: no store, no choice of where files live. The service (`weighbridge.services.custody`) decides
paths and records rows; this module only turns byte streams into sealed byte streams and back.

Blob format (version 1)::

    header  = b"WBC" | version u8 | chunk_bytes u32 | nonce_prefix 8 bytes        (16 bytes)
    chunk i = AES-256-GCM(data_key, nonce = nonce_prefix | i u32,
                          aad = header | len(context) u32 | context | i u32 | final u8)

Why each piece is there:

- *Chunks* let a multi-GB file stream through a few MiB of memory, in both directions.
- *The chunk index in the nonce and the AAD* makes a reordered chunk fail authentication.
- *The final flag in the AAD* makes a blob cut at a chunk boundary fail: the last chunk left was
  sealed as "not final". A file whose size is a multiple of the chunk size ends with a full final
  chunk; an empty file is one empty final chunk, so every blob has at least one chunk.
- *A random nonce prefix per file* (bound through the header) makes a chunk copied from another
  file of the same submission (same data key) fail, and keeps nonces unique under one key.
- *The context* (the service passes submission id, position and manifest path) makes a whole blob
  swapped for another one of the same submission fail too.
- *The header in the AAD* means a changed chunk size or prefix cannot go unnoticed.

Keys: each submission has a random 256-bit data key, stored only wrapped (AES-GCM) under the
store's master key. The master key comes from a passphrase through a memory-hard KDF (Argon2id when
`cryptography` provides it, scrypt otherwise; name, parameters and salt are recorded) or from a key
file of 32 random bytes. A key check value recorded with the master-key record lets a wrong
passphrase be rejected before any data is read or written.
"""

from __future__ import annotations

import base64
import binascii
import getpass
import hashlib
import hmac
import os
import struct
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Literal, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from weighbridge.errors import WeighbridgeError

MAGIC = b"WBC"
FORMAT_VERSION = 1
HEADER = struct.Struct(">3sBI8s")  # magic, version, chunk_bytes, nonce_prefix
KEY_BYTES = 32
TAG_BYTES = 16
NONCE_PREFIX_BYTES = 8
DEFAULT_CHUNK_BYTES = 4 << 20
# Bounds a corrupted header's chunk size before it is authenticated, so it cannot ask for GBs of RAM.
MAX_CHUNK_BYTES = 64 << 20
MAX_CHUNKS = 1 << 32  # the chunk index is 32 bits of the 96-bit nonce

_KEY_CHECK_PLAINTEXT = b"weighbridge custody key check v1"
_KEY_CHECK_AAD = b"weighbridge/custody/key-check/v1"
_WRAP_AAD = b"weighbridge/custody/data-key/v1\0"

FailureReason = Literal["header", "tampered", "truncated", "trailing", "key"]
KeyKind = Literal["passphrase", "keyfile"]


class CustodyError(WeighbridgeError):
    """Stored custody bytes that do not authenticate. `reason` says how; `chunk` where (0-based).

    Still a `WeighbridgeError` (one error type for the user), with the detail a verifier needs to
    pinpoint the failure instead of a bare "decryption failed".
    """

    def __init__(self, problem: str, fix: str, reason: FailureReason, chunk: int | None = None) -> None:
        super().__init__(problem, fix)
        self.reason: FailureReason = reason
        self.chunk = chunk


# -- sealing files ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sealed:
    """What encrypting one file produced: enough to check the blob later with or without the key."""

    nonce_prefix: bytes
    chunk_bytes: int
    chunks: int
    plaintext_sha256: str
    plaintext_bytes: int
    ciphertext_sha256: str
    ciphertext_bytes: int


@dataclass(frozen=True)
class Opened:
    """What decrypting one blob produced. Only returned when every chunk authenticated."""

    nonce_prefix: bytes
    chunk_bytes: int
    chunks: int
    plaintext_sha256: str
    plaintext_bytes: int


def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=8 * KEY_BYTES)


def encrypt_stream(
    src: BinaryIO,
    dst: BinaryIO,
    data_key: bytes,
    *,
    context: bytes = b"",
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
) -> Sealed:
    """Encrypt `src` to `dst` chunk by chunk, hashing plaintext and ciphertext on the way.

    Args:
        src: readable binary stream (read to its end).
        dst: writable binary stream; receives the header and the sealed chunks.
        data_key: 32 bytes, the submission's data key.
        context: bytes bound into every chunk's associated data; decrypting needs the same bytes.
        chunk_bytes: plaintext bytes per chunk (1 .. MAX_CHUNK_BYTES). Tests use small ones to get
            many chunks from small files.
    """
    _check_key(data_key)
    if not 0 < chunk_bytes <= MAX_CHUNK_BYTES:
        raise ValueError(f"chunk_bytes must be in 1..{MAX_CHUNK_BYTES}")
    prefix = os.urandom(NONCE_PREFIX_BYTES)
    header = HEADER.pack(MAGIC, FORMAT_VERSION, chunk_bytes, prefix)
    aad_base = _aad_base(header, context)
    aead = AESGCM(data_key)
    plain_hash, cipher_hash = hashlib.sha256(), hashlib.sha256()
    dst.write(header)
    cipher_hash.update(header)
    total, cipher_total, index = 0, len(header), 0
    chunk = _read_full(src, chunk_bytes)
    while True:
        # A short chunk means the end; a full one is final only if nothing follows it.
        following = _read_full(src, chunk_bytes) if len(chunk) == chunk_bytes else b""
        final = not following
        if index >= MAX_CHUNKS:
            raise ValueError("file too large for this chunk size")
        plain_hash.update(chunk)
        sealed = aead.encrypt(_nonce(prefix, index), chunk, _aad(aad_base, index, final))
        dst.write(sealed)
        cipher_hash.update(sealed)
        total += len(chunk)
        cipher_total += len(sealed)
        index += 1
        if final:
            break
        chunk = following
    return Sealed(
        nonce_prefix=prefix,
        chunk_bytes=chunk_bytes,
        chunks=index,
        plaintext_sha256=plain_hash.hexdigest(),
        plaintext_bytes=total,
        ciphertext_sha256=cipher_hash.hexdigest(),
        ciphertext_bytes=cipher_total,
    )


def decrypt_stream(src: BinaryIO, dst: BinaryIO | None, data_key: bytes, *, context: bytes = b"") -> Opened:
    """Decrypt a blob chunk by chunk to `dst` (or nowhere, to verify), hashing the plaintext.

    Raises `CustodyError` at the first chunk that does not authenticate, naming why: `tampered`
    (bytes changed, a chunk reordered or taken from another file, wrong context), `truncated`
    (the blob ends before its final chunk), `trailing` (bytes after the final chunk) or `header`.
    Plaintext already written to `dst` when that happens is unauthenticated: discard it.
    """
    _check_key(data_key)
    header = _read_full(src, HEADER.size)
    if len(header) < HEADER.size:
        raise CustodyError("The blob is shorter than its header", _RESTORE, "truncated")
    magic, version, chunk_bytes, prefix = HEADER.unpack(header)
    if magic != MAGIC:
        raise CustodyError("The blob is not a weighbridge custody file (bad magic)", _RESTORE, "header")
    if version != FORMAT_VERSION:
        raise CustodyError(f"Unknown custody format version {version}", "Upgrade weighbridge", "header")
    if not 0 < chunk_bytes <= MAX_CHUNK_BYTES:
        raise CustodyError(f"The blob header declares an impossible chunk size ({chunk_bytes})", _RESTORE, "header")
    aad_base = _aad_base(header, context)
    aead = AESGCM(data_key)
    plain_hash = hashlib.sha256()
    step = chunk_bytes + TAG_BYTES
    total, index = 0, 0
    block = _read_full(src, step)
    while True:
        if len(block) < TAG_BYTES:
            raise CustodyError(f"The blob ends inside chunk {index}", _RESTORE, "truncated", index)
        following = _read_full(src, step) if len(block) == step else b""
        final = not following
        nonce = _nonce(prefix, index)
        try:
            plain = aead.decrypt(nonce, block, _aad(aad_base, index, final))
        except InvalidTag:
            raise _diagnose(aead, nonce, block, aad_base, index, final) from None
        plain_hash.update(plain)
        if dst is not None:
            dst.write(plain)
        total += len(plain)
        index += 1
        if final:
            break
        block = following
    return Opened(
        nonce_prefix=prefix,
        chunk_bytes=chunk_bytes,
        chunks=index,
        plaintext_sha256=plain_hash.hexdigest(),
        plaintext_bytes=total,
    )


_RESTORE = "Restore the blob from a backup or have the submitter deposit the model again"


def _diagnose(aead: AESGCM, nonce: bytes, block: bytes, aad_base: bytes, index: int, final: bool) -> CustodyError:
    """Name why a chunk failed: a chunk that authenticates with the other final flag is intact, so
    the blob was cut (it was sealed as not final) or extended (bytes follow the real final chunk)."""
    try:
        aead.decrypt(nonce, block, _aad(aad_base, index, not final))
    except InvalidTag:
        return CustodyError(
            f"Chunk {index} fails authentication: its bytes were changed, or it was moved from another "
            "position or file",
            _RESTORE,
            "tampered",
            index,
        )
    if final:
        return CustodyError(f"The blob was truncated after chunk {index}", _RESTORE, "truncated", index + 1)
    return CustodyError(f"Bytes were appended after the final chunk {index}", _RESTORE, "trailing", index + 1)


def _read_full(src: BinaryIO, n: int) -> bytes:
    """Read exactly n bytes unless the stream ends first (pipes and sockets return short reads)."""
    data = src.read(n)
    if len(data) == n or not data:
        return data
    parts = [data]
    got = len(data)
    while got < n:
        more = src.read(n - got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def _aad_base(header: bytes, context: bytes) -> bytes:
    return header + struct.pack(">I", len(context)) + context


def _aad(base: bytes, index: int, final: bool) -> bytes:
    return base + struct.pack(">IB", index, 1 if final else 0)


def _nonce(prefix: bytes, index: int) -> bytes:
    return prefix + struct.pack(">I", index)


def _check_key(key: bytes) -> None:
    if len(key) != KEY_BYTES:
        raise ValueError(f"keys are {KEY_BYTES} bytes")


# -- wrapping data keys -------------------------------------------------------------------------


def wrap_data_key(master_key: bytes, data_key: bytes, context: bytes) -> bytes:
    """AES-GCM-seal a data key under the master key; `context` (the submission id) is bound in, so
    a wrapped key copied onto another submission's rows does not open there."""
    _check_key(master_key)
    _check_key(data_key)
    nonce = os.urandom(12)
    return nonce + AESGCM(master_key).encrypt(nonce, data_key, _WRAP_AAD + context)


def unwrap_data_key(master_key: bytes, wrapped: bytes, context: bytes) -> bytes:
    _check_key(master_key)
    try:
        key = AESGCM(master_key).decrypt(wrapped[:12], wrapped[12:], _WRAP_AAD + context)
    except (InvalidTag, ValueError):
        raise CustodyError(
            "The wrapped data key does not open under this store's master key (its record was changed)",
            _RESTORE,
            "key",
        ) from None
    _check_key(key)
    return key


# -- master keys --------------------------------------------------------------------------------


@dataclass(frozen=True)
class KdfSpec:
    """A key-derivation function and its cost parameters, as recorded in the master-key record."""

    name: Literal["argon2id", "scrypt", "none"]
    params: dict[str, int] = field(default_factory=dict)


# Argon2id: RFC 9106's second recommended option (64 MiB, 3 passes). scrypt: 2^17 x 8 (128 MiB).
ARGON2ID_DEFAULT = KdfSpec("argon2id", {"iterations": 3, "lanes": 4, "memory_cost": 64 * 1024})
SCRYPT_DEFAULT = KdfSpec("scrypt", {"n": 1 << 17, "r": 8, "p": 1})


def default_kdf() -> KdfSpec:
    """Argon2id where the installed `cryptography` has it (>= 44), scrypt otherwise."""
    try:
        from cryptography.hazmat.primitives.kdf.argon2 import Argon2id  # noqa: F401
    except ImportError:  # pragma: no cover - depends on the installed cryptography
        return SCRYPT_DEFAULT
    return ARGON2ID_DEFAULT


def derive_key(secret: bytes, salt: bytes, kdf: KdfSpec) -> bytes:
    if kdf.name == "scrypt":
        p = kdf.params
        return Scrypt(salt=salt, length=KEY_BYTES, n=p["n"], r=p["r"], p=p["p"]).derive(secret)
    if kdf.name == "argon2id":
        from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

        p = kdf.params
        return Argon2id(
            salt=salt,
            length=KEY_BYTES,
            iterations=p["iterations"],
            lanes=p["lanes"],
            memory_cost=p["memory_cost"],
        ).derive(secret)
    if kdf.name == "none":
        _check_key(secret)
        return secret
    raise WeighbridgeError(f"Unknown key-derivation function '{kdf.name}'", "Upgrade weighbridge")


@dataclass(frozen=True)
class MasterKeyRecord:
    """How to re-derive the master key and check it, without storing anything that reveals it."""

    kind: KeyKind
    kdf: KdfSpec
    salt: bytes
    check: bytes  # nonce | AES-GCM(master key, constant): opens only under the right master key


class KeySource(Protocol):
    """Where the master key's secret comes from. `secret(new=True)` is asked when a store is being
    initialised, so an interactive source can ask twice."""

    @property
    def kind(self) -> KeyKind: ...

    def secret(self, *, new: bool) -> bytes: ...


@dataclass(frozen=True)
class Passphrase:
    """A passphrase given as a value (e.g. from WEIGHBRIDGE_PASSPHRASE). Never shown in reprs."""

    value: str = field(repr=False)

    @property
    def kind(self) -> KeyKind:
        return "passphrase"

    def secret(self, *, new: bool) -> bytes:
        return _passphrase_bytes(self.value)


class PromptedPassphrase:
    """A passphrase typed at a prompt, asked for once per process (twice when creating a store)."""

    def __init__(self, prompt: Callable[[str], str] = getpass.getpass) -> None:
        self._prompt = prompt
        self._value: bytes | None = None

    @property
    def kind(self) -> KeyKind:
        return "passphrase"

    def secret(self, *, new: bool) -> bytes:
        if self._value is None:
            first = self._prompt("Custody passphrase: ")
            if new and self._prompt("New custody store; repeat the passphrase: ") != first:
                raise WeighbridgeError("The two passphrases differ", "Run the command again")
            self._value = _passphrase_bytes(first)
        return self._value


@dataclass(frozen=True)
class KeyFile:
    """A key file: 32 random bytes, raw or base64 text (e.g. `head -c32 /dev/urandom | base64`)."""

    path: Path

    @property
    def kind(self) -> KeyKind:
        return "keyfile"

    def secret(self, *, new: bool) -> bytes:
        try:
            data = self.path.read_bytes()
        except OSError as exc:
            raise WeighbridgeError(
                f"Cannot read the key file {self.path}: {exc.strerror}", "Check WEIGHBRIDGE_KEY_FILE"
            ) from None
        if len(data) == KEY_BYTES:
            return data
        try:
            key = base64.b64decode(data.strip(), validate=True)
        except (binascii.Error, ValueError):
            key = b""
        if len(key) != KEY_BYTES:
            raise WeighbridgeError(
                f"The key file {self.path} holds neither 32 raw bytes nor 32 bytes in base64",
                "Create one with `head -c 32 /dev/urandom > KEYFILE` (keep it private, chmod 600)",
            )
        return key


def _passphrase_bytes(value: str) -> bytes:
    if not value:
        raise WeighbridgeError("The custody passphrase is empty", "Set a non-empty WEIGHBRIDGE_PASSPHRASE")
    # NFC, so the same passphrase typed on different systems derives the same key.
    return unicodedata.normalize("NFC", value).encode("utf-8")


def new_master_key(source: KeySource, kdf: KdfSpec | None = None) -> tuple[MasterKeyRecord, bytes]:
    """Create the master-key record of a new store and the key it describes."""
    secret = source.secret(new=True)
    if source.kind == "keyfile":
        spec, salt = KdfSpec("none"), b""
    else:
        spec, salt = kdf or default_kdf(), os.urandom(16)
    master = derive_key(secret, salt, spec)
    nonce = os.urandom(12)
    check = nonce + AESGCM(master).encrypt(nonce, _KEY_CHECK_PLAINTEXT, _KEY_CHECK_AAD)
    return MasterKeyRecord(kind=source.kind, kdf=spec, salt=salt, check=check), master


def unlock(source: KeySource, record: MasterKeyRecord) -> bytes:
    """The master key, or a clear error when the source is not the one the store was made with."""
    if source.kind != record.kind:
        if record.kind == "passphrase":
            raise WeighbridgeError(
                "This custody store is locked with a passphrase, not a key file",
                "Set WEIGHBRIDGE_PASSPHRASE (and unset WEIGHBRIDGE_KEY_FILE)",
            )
        raise WeighbridgeError(
            "This custody store is locked with a key file, not a passphrase",
            "Set WEIGHBRIDGE_KEY_FILE to the store's key file (and unset WEIGHBRIDGE_PASSPHRASE)",
        )
    master = derive_key(source.secret(new=False), record.salt, record.kdf)
    try:
        opened = AESGCM(master).decrypt(record.check[:12], record.check[12:], _KEY_CHECK_AAD)
    except (InvalidTag, ValueError):
        opened = b""
    if not hmac.compare_digest(opened, _KEY_CHECK_PLAINTEXT):
        if record.kind == "passphrase":
            raise WeighbridgeError(
                "The passphrase does not unlock this custody store",
                "Check WEIGHBRIDGE_PASSPHRASE (or type the store's current passphrase)",
            )
        raise WeighbridgeError(
            "The key file does not unlock this custody store",
            "Point WEIGHBRIDGE_KEY_FILE at the store's current key file",
        )
    return master
