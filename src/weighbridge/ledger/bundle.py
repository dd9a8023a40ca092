"""The audit bundle: one JSON Lines file an auditor can verify with nothing else.

Every line is the canonical JSON (see `canonical.py`) of a one-key object, ending in `\\n`:

    {"header": {"format": ..., "version": 1, "entries": N, "keys": K, "checkpoints": [tree sizes]}}
    {"key": {"key_id": ..., "actor": ..., "public_key": <hex of the raw Ed25519 key>}}   K lines
    {"entry": {...}}            entries in seq order, each checkpoint right after the entry
    {"checkpoint": {...}}       whose tree size it states

Every byte is checked: there is deliberately no field a verifier cannot check (no export time).
JSON Lines rather than one JSON document so that a million-entry bundle streams in constant memory;
checkpoints sit where they apply so that a verifier checks each against the running Merkle root.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from weighbridge.ledger.canonical import canonical_json, sha256_hex
from weighbridge.ledger.records import (
    Checkpoint,
    LedgerEntry,
    MalformedRecord,
    checkpoint_record,
    entry_record,
)

BUNDLE_FORMAT = "weighbridge-ledger-bundle"
BUNDLE_VERSION = 1
_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class KeyRecord:
    """A public key by its id, with the actor it belongs to (entries must name that actor)."""

    key_id: str
    actor: str
    public_key: str  # hex of the raw 32 bytes


@dataclass(frozen=True)
class Header:
    entries: int
    keys: int
    checkpoints: tuple[int, ...]


def key_record(key: KeyRecord) -> dict[str, Any]:
    return {"key_id": key.key_id, "actor": key.actor, "public_key": key.public_key}


def key_from_record(record: Any) -> KeyRecord:
    if not isinstance(record, dict) or set(record) != {"key_id", "actor", "public_key"}:
        raise MalformedRecord("a key record has exactly key_id, actor, public_key")
    key_id, actor, public = record["key_id"], record["actor"], record["public_key"]
    if not isinstance(actor, str) or not isinstance(key_id, str) or not isinstance(public, str):
        raise MalformedRecord("key fields are strings")
    if not _HEX64.fullmatch(public) or not _HEX64.fullmatch(key_id):
        raise MalformedRecord("key_id and public_key are 64 lower-case hex characters")
    if sha256_hex(bytes.fromhex(public)) != key_id:
        raise MalformedRecord("key_id is not the SHA-256 of the public key")
    return KeyRecord(key_id, actor, public)


def header_from_record(record: Any) -> Header:
    fields = {"format", "version", "entries", "keys", "checkpoints"}
    if not isinstance(record, dict) or set(record) != fields:
        raise MalformedRecord(f"the header has exactly {sorted(fields)}")
    if record["format"] != BUNDLE_FORMAT or record["version"] != BUNDLE_VERSION:
        raise MalformedRecord(f"not a {BUNDLE_FORMAT} version {BUNDLE_VERSION}")
    sizes = record["checkpoints"]
    counts = (record["entries"], record["keys"])
    if not all(type(n) is int and n >= 0 for n in counts):
        raise MalformedRecord("entries and keys are counts")
    if not isinstance(sizes, list) or not all(type(n) is int and n > 0 for n in sizes) or sizes != sorted(set(sizes)):
        raise MalformedRecord("checkpoints is an increasing list of tree sizes")
    return Header(record["entries"], record["keys"], tuple(sizes))


def line(kind: str, record: dict[str, Any]) -> bytes:
    return canonical_json({kind: record}) + b"\n"


def bundle_lines(
    entry_count: int,
    keys: Sequence[KeyRecord],
    checkpoints: Sequence[Checkpoint],
    entries: Iterable[LedgerEntry],
) -> Iterator[bytes]:
    """The bundle's lines, entries streamed and each checkpoint placed after the entry it covers."""
    header = {
        "format": BUNDLE_FORMAT,
        "version": BUNDLE_VERSION,
        "entries": entry_count,
        "keys": len(keys),
        "checkpoints": [cp.tree_size for cp in checkpoints],
    }
    yield line("header", header)
    for key in keys:
        yield line("key", key_record(key))
    pending = sorted(checkpoints, key=lambda cp: cp.tree_size)
    i = 0
    for entry in entries:
        yield line("entry", entry_record(entry))
        while i < len(pending) and pending[i].tree_size == entry.seq:
            yield line("checkpoint", checkpoint_record(pending[i]))
            i += 1
