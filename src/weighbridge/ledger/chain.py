"""Making entries and checkpoints: the only place the ledger hashes and signs (the store and the
benchmark both build through here, so what they write is what a verifier expects)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from weighbridge.ledger.canonical import DIGEST_PREFIX, canonical_json, evidence_digest, sha256_hex
from weighbridge.ledger.records import (
    Checkpoint,
    LedgerEntry,
    checkpoint_statement,
    entry_body,
    entry_hash_of,
    entry_signing_message,
    utc_timestamp,
)
from weighbridge.ledger.signing import Signer


def make_entry(
    *,
    seq: int,
    prev_hash: str,
    signer: Signer,
    actor: str,
    action: str,
    subject: str,
    evidence: Mapping[str, Any] | bytes,
    time: str | None = None,
) -> LedgerEntry:
    """Hash and sign entry `seq`, chained to `prev_hash`; mapping evidence is kept readable too."""
    if isinstance(evidence, bytes | bytearray | memoryview):
        digest, readable = evidence_digest(evidence), None
    else:
        encoded = canonical_json(dict(evidence))
        digest, readable = DIGEST_PREFIX + sha256_hex(encoded), encoded.decode()
    key_id = signer.key_id
    time = time or utc_timestamp()
    body = entry_body(seq, time, actor, key_id, action, subject, digest, prev_hash)
    entry_hash = entry_hash_of(body)
    signature = signer.sign(entry_signing_message(entry_hash)).hex()
    return LedgerEntry(
        seq=seq,
        time=time,
        actor=actor,
        actor_key_id=key_id,
        action=action,
        subject=subject,
        evidence_digest=digest,
        prev_hash=prev_hash,
        entry_hash=entry_hash,
        signature=signature,
        evidence_json=readable,
    )


def make_checkpoint(*, tree_size: int, root: bytes, signer: Signer, time: str | None = None) -> Checkpoint:
    time = time or utc_timestamp()
    statement = checkpoint_statement(tree_size, root.hex(), time, signer.key_id)
    return Checkpoint(tree_size, root.hex(), time, signer.key_id, signer.sign(statement).hex())
