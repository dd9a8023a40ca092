"""The audit ledger in the store: append, checkpoint, export, verify, prove.

Every workflow action goes through `append`. Appends are serialised: on PostgreSQL by a
transaction-level advisory lock, on SQLite by its single writer; a writer that still loses a race
(unique seq) retries. Every `checkpoint_every` entries the append also writes a checkpoint signed by
the organisation key, in the same transaction, so checkpoints fall exactly on multiples of N.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any, Protocol, TypeVar

from sqlalchemy import func, insert, select, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from weighbridge.errors import WeighbridgeError
from weighbridge.ledger.bundle import KeyRecord, bundle_lines
from weighbridge.ledger.canonical import canonical_json
from weighbridge.ledger.chain import make_checkpoint, make_entry
from weighbridge.ledger.merkle import Frontier, inclusion_path
from weighbridge.ledger.proof import InclusionProof
from weighbridge.ledger.records import GENESIS_HASH, ORGANISATION_ACTOR, Checkpoint, LedgerEntry
from weighbridge.ledger.signing import Signer
from weighbridge.ledger.verify import VerifyResult, verify_lines
from weighbridge.store.db import Store
from weighbridge.store.ledger_schema import LedgerCheckpointRow, LedgerEntryRow, LedgerKeyRow

__all__ = [
    "DEFAULT_CHECKPOINT_EVERY",
    "Acting",
    "Checkpoint",
    "InclusionProof",
    "LedgerEntry",
    "VerifyResult",
    "append",
    "append_as",
    "append_many",
    "checkpoint",
    "export_bundle",
    "prove",
    "read_entries",
    "verify_bundle",
    "verify_store",
]

DEFAULT_CHECKPOINT_EVERY = 1000
_PG_LEDGER_LOCK_ID = 0x1ED6E5  # any constant shared by every weighbridge process
_ATTEMPTS = 20
_WAITED_S = 5.0  # an attempt that failed after this long waited out a lock rather than lost a race
T = TypeVar("T")


def append(
    store: Store,
    signer: Signer,
    actor: str,
    action: str,
    subject: str,
    evidence: Mapping[str, Any] | bytes,
    *,
    checkpoint_signer: Signer | Callable[[], Signer] | None = None,
    checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY,
) -> LedgerEntry:
    """Append one signed entry (its own transaction) and return it.

    Args:
        signer: the actor's key; the first entry by a key registers it for `actor`, and a key keeps
            its actor for good (a verifier checks that every entry names its key's actor).
        evidence: a mapping (hashed as canonical JSON and kept readable) or raw bytes (only the
            digest is kept). Mappings must hold JSON values only.
        checkpoint_signer: signs the automatic checkpoints (a signer or a function returning one,
            called only when a checkpoint is due); default: the organisation key.
        checkpoint_every: a checkpoint is written when the new entry's seq is a multiple of this.

    Raises:
        WeighbridgeError: the key is registered to another actor, or the evidence is not JSON.
    """
    if isinstance(evidence, Mapping):
        try:
            canonical_json(dict(evidence))
        except (TypeError, ValueError) as exc:
            raise WeighbridgeError(
                f"Ledger evidence for '{action}' is not plain JSON ({exc})",
                "Pass string keys and str/int/bool/list/dict values",
            ) from exc

    def write(s: Session) -> LedgerEntry:
        _register_key(s, signer, actor, strict=True)
        last = s.execute(
            select(LedgerEntryRow.seq, LedgerEntryRow.entry_hash).order_by(LedgerEntryRow.seq.desc()).limit(1)
        ).first()
        seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS_HASH)
        entry = make_entry(
            seq=seq, prev_hash=prev, signer=signer, actor=actor, action=action, subject=subject, evidence=evidence
        )
        s.add(_entry_row(entry))
        s.flush()
        if checkpoint_every > 0 and seq % checkpoint_every == 0:
            _write_checkpoint(s, _resolve(checkpoint_signer))
        return entry

    return _locked(store, write)


class Acting(Protocol):
    """Whoever signs an entry: a name and a key (`services.identity.Actor` is one).

    A protocol rather than `Actor` itself, so that identity (which registers users by appending
    `user.add` entries) and audit (which looks up the current user before appending) can both build
    on this module without importing each other.
    """

    @property
    def name(self) -> str: ...

    @property
    def signer(self) -> Signer: ...


def append_as(store: Store, actor: Acting, action: str, subject: str, evidence: Mapping[str, Any]) -> LedgerEntry:
    """`append` signed by `actor`'s key under `actor`'s name, the one shape every user action takes."""
    return append(store, actor.signer, actor.name, action, subject, evidence)


def append_many(
    store: Store,
    signer: Signer,
    actor: str,
    actions: Iterable[tuple[str, str, Mapping[str, Any] | bytes]],
    *,
    checkpoint_signer: Signer | Callable[[], Signer] | None = None,
    checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY,
) -> list[LedgerEntry]:
    """Append (action, subject, evidence) triples by one actor in one transaction: all or none.

    For imports and bulk loads; checkpoints fall on multiples of `checkpoint_every` as with `append`.
    """
    items = list(actions)

    def write(s: Session) -> list[LedgerEntry]:
        _register_key(s, signer, actor, strict=True)
        last = s.execute(
            select(LedgerEntryRow.seq, LedgerEntryRow.entry_hash).order_by(LedgerEntryRow.seq.desc()).limit(1)
        ).first()
        seq, prev = (last[0], last[1]) if last else (0, GENESIS_HASH)
        written: list[LedgerEntry] = []
        pending: list[dict[str, Any]] = []
        cp_signer: Signer | None = None
        for action, subject, evidence in items:
            seq += 1
            entry = make_entry(
                seq=seq, prev_hash=prev, signer=signer, actor=actor, action=action, subject=subject, evidence=evidence
            )
            written.append(entry)
            prev = entry.entry_hash
            pending.append(_entry_values(entry))
            if checkpoint_every > 0 and seq % checkpoint_every == 0:
                _insert_entries(s, pending)
                pending = []
                cp_signer = cp_signer or _resolve(checkpoint_signer)
                _write_checkpoint(s, cp_signer)
        _insert_entries(s, pending)
        return written

    return _locked(store, write)


def checkpoint(store: Store, signer: Signer) -> Checkpoint:
    """Sign the Merkle root of the whole ledger now (returns the latest one if nothing was added since).

    Raises:
        WeighbridgeError: the ledger is empty.
    """
    return _locked(store, lambda s: _write_checkpoint(s, signer))


def read_entries(store: Store, *, last: int | None = None, subject: str | None = None) -> list[LedgerEntry]:
    """Entries in seq order (only the `last` N, only those about `subject`, when given)."""
    with store.session() as s:
        query = select(LedgerEntryRow)
        if subject is not None:
            query = query.where(LedgerEntryRow.subject == subject)
        if last is not None:
            rows = list(s.scalars(query.order_by(LedgerEntryRow.seq.desc()).limit(last)))[::-1]
        else:
            rows = list(s.scalars(query.order_by(LedgerEntryRow.seq)))
        return [entry_of(r) for r in rows]


def read_checkpoints(store: Store) -> list[Checkpoint]:
    with store.session() as s:
        return [
            _checkpoint_of(r) for r in s.scalars(select(LedgerCheckpointRow).order_by(LedgerCheckpointRow.tree_size))
        ]


def export_bundle(store: Store, path: Path) -> None:
    """Write the self-contained audit bundle (see `weighbridge.ledger.bundle`) to `path`, atomically."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as f:
            for line in _store_lines(store):
                f.write(line)
        tmp.replace(path)
    except OSError as exc:
        raise WeighbridgeError(f"Cannot write the ledger bundle {path}: {exc.strerror}", "Check the path") from exc
    finally:
        tmp.unlink(missing_ok=True)


def verify_bundle(
    path: Path,
    *,
    trusted_keys: Sequence[str] | None = None,
    check_signatures: bool = True,
    jobs: int = 1,
    pinned_roots: Mapping[int, str] | None = None,
) -> VerifyResult:
    """Verify an exported bundle offline (see `weighbridge.ledger.verify.verify_lines`).

    Raises:
        WeighbridgeError: the file cannot be read.
    """
    try:
        with path.open("rb") as f:
            return verify_lines(
                f, trusted_keys=trusted_keys, check_signatures=check_signatures, jobs=jobs, pinned_roots=pinned_roots
            )
    except OSError as exc:
        raise WeighbridgeError(f"Cannot read the ledger bundle {path}: {exc.strerror}", "Check the path") from exc


def verify_store(
    store: Store,
    *,
    trusted_keys: Sequence[str] | None = None,
    check_signatures: bool = True,
    jobs: int = 1,
    pinned_roots: Mapping[int, str] | None = None,
) -> VerifyResult:
    """Verify the store's ledger by the same code as a bundle: what an auditor would see."""
    return verify_lines(
        _store_lines(store),
        trusted_keys=trusted_keys,
        check_signatures=check_signatures,
        jobs=jobs,
        pinned_roots=pinned_roots,
    )


def prove(store: Store, seq: int, *, checkpoint_size: int | None = None) -> InclusionProof:
    """An inclusion proof of entry `seq` against checkpoint `checkpoint_size` (default: the first
    checkpoint that covers the entry).

    Raises:
        WeighbridgeError: no such entry, or no checkpoint covers it yet.
    """
    with store.session() as s:
        row = s.get(LedgerEntryRow, seq)
        if row is None:
            raise WeighbridgeError(f"The ledger has no entry {seq}", "Run `weighbridge ledger show` to list entries")
        query = select(LedgerCheckpointRow)
        if checkpoint_size is None:
            query = query.where(LedgerCheckpointRow.tree_size >= seq).order_by(LedgerCheckpointRow.tree_size)
        else:
            query = query.where(LedgerCheckpointRow.tree_size == checkpoint_size)
        cp_row = s.scalars(query.limit(1)).first()
        if cp_row is None or cp_row.tree_size < seq:
            what = f"no checkpoint at tree size {checkpoint_size}" if checkpoint_size else "no checkpoint yet"
            raise WeighbridgeError(
                f"Cannot prove entry {seq}: {what} covers it",
                "Run `weighbridge ledger checkpoint` (or name an existing checkpoint with --checkpoint)",
            )
        hashes = s.scalars(
            select(LedgerEntryRow.entry_hash).where(LedgerEntryRow.seq <= cp_row.tree_size).order_by(LedgerEntryRow.seq)
        ).all()
        entry, cp = entry_of(row), _checkpoint_of(cp_row)
        entry_key = _key_of(s.get_one(LedgerKeyRow, entry.actor_key_id))
        cp_key = _key_of(s.get_one(LedgerKeyRow, cp.signer_key_id))
    path = inclusion_path(seq - 1, [bytes.fromhex(h) for h in hashes])
    return InclusionProof(entry, cp, tuple(p.hex() for p in path), entry_key, cp_key)


def ledger_keys(store: Store) -> list[KeyRecord]:
    with store.session() as s:
        return [_key_of(r) for r in s.scalars(select(LedgerKeyRow).order_by(LedgerKeyRow.created_at))]


# -- internals ---------------------------------------------------------------------------------------
def _locked(store: Store, work: Callable[[Session], T]) -> T:
    """Run `work` in one transaction holding the ledger's write lock, retrying lost races.

    Raises:
        WeighbridgeError: the database stayed locked by another writer (SQLite's busy timeout ran out).
    """
    for attempt in range(_ATTEMPTS):
        began = time.monotonic()
        try:
            with store.session() as s:
                if s.get_bind().dialect.name == "postgresql":
                    s.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _PG_LEDGER_LOCK_ID})
                return work(s)
        except (IntegrityError, OperationalError) as exc:
            # SQLite: a reader that turns writer after another commit gets "database is locked" at
            # once; either database: a seq or key taken meanwhile. Both mean: read again and retry.
            # A lock that outlasted SQLite's busy timeout is another writer holding on: say so.
            if _retryable(exc) and isinstance(exc, OperationalError) and time.monotonic() - began > _WAITED_S:
                raise WeighbridgeError(
                    "The ledger's database stayed locked by another writer",
                    "Retry when the other weighbridge process has finished",
                ) from exc
            if attempt == _ATTEMPTS - 1 or not _retryable(exc):
                raise
            time.sleep(random.uniform(0.001, 0.02) * (attempt + 1))
    raise AssertionError("unreachable")


def _retryable(exc: IntegrityError | OperationalError) -> bool:
    if isinstance(exc, IntegrityError):
        return True
    return "locked" in str(exc.orig) or "busy" in str(exc.orig).lower()


def _resolve(signer: Signer | Callable[[], Signer] | None) -> Signer:
    if signer is None:
        from weighbridge.services.orgkey import organisation_signer

        return organisation_signer()
    if isinstance(signer, Signer):
        return signer
    return signer()


def _register_key(s: Session, signer: Signer, actor: str, *, strict: bool) -> None:
    row = s.get(LedgerKeyRow, signer.key_id)
    if row is None:
        s.add(LedgerKeyRow(key_id=signer.key_id, actor=actor, public_key=signer.public_key.hex()))
        s.flush()
    elif strict and row.actor != actor:
        raise WeighbridgeError(
            f"Key {signer.key_id[:16]}… is registered in the ledger for '{row.actor}', not '{actor}'",
            "Each actor signs with their own key",
        )


def _write_checkpoint(s: Session, signer: Signer) -> Checkpoint:
    size = s.scalar(select(func.max(LedgerEntryRow.seq))) or 0
    if size == 0:
        raise WeighbridgeError("The ledger is empty: there is nothing to checkpoint", "Record an action first")
    last = s.scalars(select(LedgerCheckpointRow).order_by(LedgerCheckpointRow.tree_size.desc()).limit(1)).first()
    if last is not None and last.tree_size == size:
        return _checkpoint_of(last)
    if last is None:
        frontier, start = Frontier(), 0
    else:
        frontier = Frontier(last.tree_size, [bytes.fromhex(h) for h in json.loads(last.frontier_json)])
        start = last.tree_size
    hashes = s.scalars(
        select(LedgerEntryRow.entry_hash)
        .where(LedgerEntryRow.seq > start, LedgerEntryRow.seq <= size)
        .order_by(LedgerEntryRow.seq)
    )
    for h in hashes:
        frontier.append(bytes.fromhex(h))
    if frontier.size != size:
        raise WeighbridgeError(
            f"The ledger's entries are not numbered 1..{size} without gaps",
            "Run `weighbridge ledger verify` to find the damage",
        )
    _register_key(s, signer, ORGANISATION_ACTOR, strict=True)
    cp = make_checkpoint(tree_size=size, root=frontier.root(), signer=signer)
    s.add(
        LedgerCheckpointRow(
            tree_size=cp.tree_size,
            root=cp.root,
            time=cp.time,
            signer_key_id=cp.signer_key_id,
            signature=cp.signature,
            frontier_json=json.dumps([h.hex() for h in frontier.hashes()]),
        )
    )
    s.flush()
    return cp


def _store_lines(store: Store) -> Iterator[bytes]:
    """The bundle lines of the store's ledger as of one moment (entries up to the max seq read first)."""
    with store.session() as s:
        size = s.scalar(select(func.max(LedgerEntryRow.seq))) or 0
        checkpoints = [
            _checkpoint_of(r)
            for r in s.scalars(
                select(LedgerCheckpointRow)
                .where(LedgerCheckpointRow.tree_size <= size)
                .order_by(LedgerCheckpointRow.tree_size)
            )
        ]
        keys = [_key_of(r) for r in s.scalars(select(LedgerKeyRow).order_by(LedgerKeyRow.key_id))]
        # Plain rows (Core), not ORM objects: an export of a million entries spends half its time
        # building objects otherwise. Column order is LedgerEntry's field order.
        columns = [getattr(LedgerEntryRow, f.name) for f in fields(LedgerEntry)]
        rows = s.execute(
            select(*columns)
            .where(LedgerEntryRow.seq <= size)
            .order_by(LedgerEntryRow.seq)
            .execution_options(yield_per=5000)
        )
        yield from bundle_lines(size, keys, checkpoints, (LedgerEntry(*row) for row in rows))


def _entry_row(e: LedgerEntry) -> LedgerEntryRow:
    return LedgerEntryRow(
        seq=e.seq,
        time=e.time,
        actor=e.actor,
        actor_key_id=e.actor_key_id,
        action=e.action,
        subject=e.subject,
        evidence_digest=e.evidence_digest,
        evidence_json=e.evidence_json,
        prev_hash=e.prev_hash,
        entry_hash=e.entry_hash,
        signature=e.signature,
    )


def _entry_values(e: LedgerEntry) -> dict[str, Any]:
    return {
        "seq": e.seq,
        "time": e.time,
        "actor": e.actor,
        "actor_key_id": e.actor_key_id,
        "action": e.action,
        "subject": e.subject,
        "evidence_digest": e.evidence_digest,
        "evidence_json": e.evidence_json,
        "prev_hash": e.prev_hash,
        "entry_hash": e.entry_hash,
        "signature": e.signature,
    }


def _insert_entries(s: Session, values: list[dict[str, Any]]) -> None:
    """One multi-row INSERT (Core executemany): a bulk load need not build ORM objects."""
    if values:
        s.execute(insert(LedgerEntryRow), values)


def entry_of(r: LedgerEntryRow) -> LedgerEntry:
    """A stored row as the library's entry record (what verification works on)."""
    return LedgerEntry(
        seq=r.seq,
        time=r.time,
        actor=r.actor,
        actor_key_id=r.actor_key_id,
        action=r.action,
        subject=r.subject,
        evidence_digest=r.evidence_digest,
        prev_hash=r.prev_hash,
        entry_hash=r.entry_hash,
        signature=r.signature,
        evidence_json=r.evidence_json,
    )


def _checkpoint_of(r: LedgerCheckpointRow) -> Checkpoint:
    return Checkpoint(r.tree_size, r.root, r.time, r.signer_key_id, r.signature)


def _key_of(r: LedgerKeyRow) -> KeyRecord:
    return KeyRecord(r.key_id, r.actor, r.public_key)
