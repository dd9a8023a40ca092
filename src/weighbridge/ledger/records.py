"""The ledger's records and the exact bytes that are hashed and signed.

An entry's hash covers every field except the hash and the signature; the signature covers the hash
behind a context string (`ENTRY_CONTEXT`), so a key that also signs notices can never have one of
its ledger signatures passed off as something else. A checkpoint signs a canonical JSON statement
that names its own kind for the same reason.

`*_record` / `*_from_record` convert to and from the JSON objects of an audit bundle. Parsing is
strict (exact field set, lower-case hex, exact types) because a verifier that tolerated two spellings
of one value would let a byte change through unnoticed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from weighbridge.ledger.canonical import canonical_json, sha256_hex

GENESIS_HASH = "0" * 64  # prev_hash of entry 1
ENTRY_CONTEXT = b"weighbridge-ledger-entry/v1:"
CHECKPOINT_KIND = "weighbridge-ledger-checkpoint/v1"
# The actor name of checkpoint keys: only a key listed for it may sign checkpoints.
ORGANISATION_ACTOR = "organisation"

_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX128 = re.compile(r"[0-9a-f]{128}")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")


class MalformedRecord(ValueError):
    """A bundle record that does not have the exact shape the format defines."""


def utc_timestamp(now: datetime | None = None) -> str:
    """The one time format the ledger writes: UTC, microseconds, `Z` (fixed width, sorts as text)."""
    return (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class LedgerEntry:
    """One action: who (actor and key), what (action, subject), when, and the digest of the evidence.

    `evidence_json` is a readable copy of mapping evidence (canonical JSON) kept beside the digest;
    it is not hashed into the entry, the digest is, so a verifier checks the copy against the digest.
    """

    seq: int
    time: str
    actor: str
    actor_key_id: str
    action: str
    subject: str
    evidence_digest: str
    prev_hash: str
    entry_hash: str
    signature: str
    evidence_json: str | None = None

    def body(self) -> dict[str, Any]:
        return entry_body(
            self.seq,
            self.time,
            self.actor,
            self.actor_key_id,
            self.action,
            self.subject,
            self.evidence_digest,
            self.prev_hash,
        )


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement that the ledger's first `tree_size` entries have Merkle root `root`."""

    tree_size: int
    root: str
    time: str
    signer_key_id: str
    signature: str

    def statement(self) -> bytes:
        return checkpoint_statement(self.tree_size, self.root, self.time, self.signer_key_id)


def entry_body(
    seq: int,
    time: str,
    actor: str,
    actor_key_id: str,
    action: str,
    subject: str,
    evidence_digest: str,
    prev_hash: str,
) -> dict[str, Any]:
    return {
        "seq": seq,
        "time": time,
        "actor": actor,
        "actor_key_id": actor_key_id,
        "action": action,
        "subject": subject,
        "evidence_digest": evidence_digest,
        "prev_hash": prev_hash,
    }


def entry_hash_of(body: dict[str, Any]) -> str:
    return sha256_hex(canonical_json(body))


def entry_signing_message(entry_hash: str) -> bytes:
    return ENTRY_CONTEXT + entry_hash.encode()


def checkpoint_statement(tree_size: int, root: str, time: str, signer_key_id: str) -> bytes:
    return canonical_json(
        {"kind": CHECKPOINT_KIND, "tree_size": tree_size, "root": root, "time": time, "signer_key_id": signer_key_id}
    )


# -- bundle records --------------------------------------------------------------------------------
def entry_record(entry: LedgerEntry) -> dict[str, Any]:
    record = entry.body() | {"entry_hash": entry.entry_hash, "signature": entry.signature}
    if entry.evidence_json is not None:
        record["evidence"] = json.loads(entry.evidence_json)
    return record


def checkpoint_record(cp: Checkpoint) -> dict[str, Any]:
    return {
        "tree_size": cp.tree_size,
        "root": cp.root,
        "time": cp.time,
        "signer_key_id": cp.signer_key_id,
        "signature": cp.signature,
    }


_ENTRY_FIELDS = frozenset(
    {
        "seq",
        "time",
        "actor",
        "actor_key_id",
        "action",
        "subject",
        "evidence_digest",
        "prev_hash",
        "entry_hash",
        "signature",
    }
)


def entry_from_record(record: Any, *, verify_hashed_fields: bool = True) -> LedgerEntry:
    """The entry a bundle record holds, or MalformedRecord.

    Args:
        verify_hashed_fields: check the form of the fields the entry hash covers too. A verifier
            that recomputes the hash anyway may pass False: any change to them is a hash mismatch.
    """
    if not isinstance(record, dict):
        raise MalformedRecord("not a JSON object")
    keys = set(record)
    required = _ENTRY_FIELDS
    if not required <= keys or not keys <= required | {"evidence"}:
        missing, extra = sorted(required - keys), sorted(keys - required - {"evidence"})
        raise MalformedRecord(f"fields wrong (missing {missing}, unexpected {extra})")
    seq = _int(record, "seq")
    for name in ("actor", "action", "subject"):
        _str(record, name)
    if verify_hashed_fields:
        _match(record, "time", _TIME)
        for name in ("actor_key_id", "prev_hash"):
            _match(record, name, _HEX64)
        _match(record, "evidence_digest", _DIGEST)
    else:
        for name in ("time", "actor_key_id", "prev_hash", "evidence_digest"):
            _str(record, name)
    _match(record, "entry_hash", _HEX64)
    _match(record, "signature", _HEX128)
    evidence_json: str | None = None
    if "evidence" in record:
        if not isinstance(record["evidence"], dict):
            raise MalformedRecord("evidence is not a JSON object")
        evidence_json = canonical_json(record["evidence"]).decode()
    return LedgerEntry(
        seq=seq,
        time=record["time"],
        actor=record["actor"],
        actor_key_id=record["actor_key_id"],
        action=record["action"],
        subject=record["subject"],
        evidence_digest=record["evidence_digest"],
        prev_hash=record["prev_hash"],
        entry_hash=record["entry_hash"],
        signature=record["signature"],
        evidence_json=evidence_json,
    )


def checkpoint_from_record(record: Any) -> Checkpoint:
    if not isinstance(record, dict):
        raise MalformedRecord("not a JSON object")
    fields = {"tree_size", "root", "time", "signer_key_id", "signature"}
    if set(record) != fields:
        raise MalformedRecord(f"fields wrong (expected {sorted(fields)}, found {sorted(record)})")
    size = _int(record, "tree_size")
    _match(record, "root", _HEX64)
    _match(record, "time", _TIME)
    _match(record, "signer_key_id", _HEX64)
    _match(record, "signature", _HEX128)
    return Checkpoint(size, record["root"], record["time"], record["signer_key_id"], record["signature"])


def _int(record: dict[str, Any], name: str) -> int:
    value = record[name]
    if type(value) is not int or value < 1:
        raise MalformedRecord(f"{name} is not a positive integer")
    return value


def _str(record: dict[str, Any], name: str) -> str:
    value = record[name]
    if not isinstance(value, str):
        raise MalformedRecord(f"{name} is not a string")
    return value


def _match(record: dict[str, Any], name: str, pattern: re.Pattern[str]) -> str:
    value = _str(record, name)
    if not pattern.fullmatch(value):
        raise MalformedRecord(f"{name} is not in the expected form")
    return value
