"""Inclusion proofs: one entry, the checkpoint that covers it, and the Merkle path between them.

A proof is self-contained (entry, checkpoint, both public keys), so whoever holds one can check,
offline, that this entry was in the ledger when the organisation signed that checkpoint — without
the rest of the ledger. Compare `checkpoint.signer_key_id` with the organisation's published key id
(or pass it as `trusted_keys`).
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from weighbridge.ledger.bundle import KeyRecord, key_from_record, key_record
from weighbridge.ledger.canonical import evidence_digest
from weighbridge.ledger.merkle import verify_inclusion
from weighbridge.ledger.records import (
    Checkpoint,
    LedgerEntry,
    MalformedRecord,
    checkpoint_from_record,
    checkpoint_record,
    entry_from_record,
    entry_hash_of,
    entry_record,
    entry_signing_message,
)
from weighbridge.ledger.signing import verify_signature
from weighbridge.ledger.verify import VerifyResult

PROOF_FORMAT = "weighbridge-ledger-inclusion-proof"


@dataclass(frozen=True)
class InclusionProof:
    entry: LedgerEntry
    checkpoint: Checkpoint
    path: tuple[str, ...]  # hex sibling hashes, leaf to root (RFC 9162 order)
    entry_key: KeyRecord
    checkpoint_key: KeyRecord

    @property
    def leaf_index(self) -> int:
        return self.entry.seq - 1


def proof_to_json(proof: InclusionProof) -> dict[str, Any]:
    return {
        "format": PROOF_FORMAT,
        "version": 1,
        "leaf_index": proof.leaf_index,
        "tree_size": proof.checkpoint.tree_size,
        "entry": entry_record(proof.entry),
        "checkpoint": checkpoint_record(proof.checkpoint),
        "path": list(proof.path),
        "keys": [key_record(proof.entry_key), key_record(proof.checkpoint_key)],
    }


def proof_from_json(data: Any) -> InclusionProof:
    if not isinstance(data, dict) or data.get("format") != PROOF_FORMAT or data.get("version") != 1:
        raise MalformedRecord(f"not a {PROOF_FORMAT} version 1")
    entry = entry_from_record(data.get("entry"))
    checkpoint = checkpoint_from_record(data.get("checkpoint"))
    path = data.get("path")
    if not isinstance(path, list) or not all(isinstance(p, str) and len(p) == 64 for p in path):
        raise MalformedRecord("path is a list of 64-character hex hashes")
    try:
        [bytes.fromhex(p) for p in path]
    except ValueError:
        raise MalformedRecord("path is a list of 64-character hex hashes") from None
    keys = data.get("keys")
    if not isinstance(keys, list) or len(keys) != 2:
        raise MalformedRecord("keys holds the entry's key and the checkpoint's key")
    entry_key, checkpoint_key = (key_from_record(k) for k in keys)
    if data.get("leaf_index") != entry.seq - 1 or data.get("tree_size") != checkpoint.tree_size:
        raise MalformedRecord("leaf_index / tree_size disagree with the entry and checkpoint")
    return InclusionProof(entry, checkpoint, tuple(path), entry_key, checkpoint_key)


def verify_proof(data: Any, *, trusted_keys: Collection[str] | None = None) -> VerifyResult:
    """Check a proof (as parsed JSON): entry hash and signature, checkpoint signature, Merkle path."""
    seq = data.get("entry", {}).get("seq") if isinstance(data, dict) and isinstance(data.get("entry"), dict) else None
    seq = seq if type(seq) is int else None

    def bad(message: str, checkpoint: int | None = None) -> VerifyResult:
        return VerifyResult(False, seq, message, checkpoint=checkpoint)

    try:
        proof = proof_from_json(data)
    except MalformedRecord as exc:
        return bad(f"the proof is malformed: {exc}")
    entry, cp = proof.entry, proof.checkpoint
    if entry_hash_of(entry.body()) != entry.entry_hash:
        return bad(f"entry {entry.seq}: hash mismatch")
    if proof.entry_key.key_id != entry.actor_key_id or proof.entry_key.actor != entry.actor:
        return bad(f"entry {entry.seq}: the bundled key is not {entry.actor}'s key named by the entry")
    if not verify_signature(
        bytes.fromhex(proof.entry_key.public_key),
        bytes.fromhex(entry.signature),
        entry_signing_message(entry.entry_hash),
    ):
        return bad(f"entry {entry.seq}: bad signature")
    if entry.evidence_json is not None and evidence_digest(json.loads(entry.evidence_json)) != entry.evidence_digest:
        return bad(f"entry {entry.seq}: the evidence does not match its digest")
    if proof.checkpoint_key.key_id != cp.signer_key_id:
        return bad("the bundled checkpoint key is not the one that signed the checkpoint", cp.tree_size)
    if trusted_keys is not None and cp.signer_key_id not in trusted_keys:
        return bad(f"the checkpoint is signed by key {cp.signer_key_id[:16]}…, not a trusted key", cp.tree_size)
    if not verify_signature(
        bytes.fromhex(proof.checkpoint_key.public_key), bytes.fromhex(cp.signature), cp.statement()
    ):
        return bad(f"the checkpoint at tree size {cp.tree_size}: bad signature", cp.tree_size)
    path = [bytes.fromhex(p) for p in proof.path]
    if not verify_inclusion(
        proof.leaf_index, cp.tree_size, bytes.fromhex(entry.entry_hash), path, bytes.fromhex(cp.root)
    ):
        return bad(f"entry {entry.seq} is not in the tree of the checkpoint at tree size {cp.tree_size}", cp.tree_size)
    return VerifyResult(
        True,
        None,
        f"entry {entry.seq} is included in the checkpoint at tree size {cp.tree_size}, signed by key "
        f"{cp.signer_key_id[:16]}…",
        checkpoints=1,
        entries=1,
        checkpoint_signers=(cp.signer_key_id,),
    )
