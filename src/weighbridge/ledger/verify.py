"""Verifying a ledger from its bundle lines: one pass, constant memory, stops at the first problem.

What is checked, in the order the lines come:
- the header, then each key (its id is the SHA-256 of the key);
- each entry: canonical bytes, seq is the next one, hash recomputes, `prev_hash` links to the entry
  before, the key is listed for that actor, the Ed25519 signature holds, readable evidence matches
  its digest;
- each checkpoint: it stands where the header says, its root equals the Merkle root of the entries
  so far, its signature holds (by a trusted key when the caller names some);
- the end: as many entries as the header says, no checkpoint missing.

The result names the first bad entry by seq (the seq that *should* be at that position, so a deleted,
inserted or reordered line is located where the damage starts) or the first bad checkpoint by the
tree size it stands at.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Collection, Iterable, Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from weighbridge.ledger.bundle import Header, KeyRecord, header_from_record, key_from_record
from weighbridge.ledger.canonical import DIGEST_PREFIX, canonical_json, sha256_hex
from weighbridge.ledger.merkle import Frontier
from weighbridge.ledger.records import (
    GENESIS_HASH,
    ORGANISATION_ACTOR,
    Checkpoint,
    LedgerEntry,
    MalformedRecord,
    checkpoint_from_record,
    entry_from_record,
    entry_hash_of,
    entry_signing_message,
)


@dataclass(frozen=True)
class VerifyResult:
    """The verdict. `first_bad_seq` / `checkpoint` locate the first problem; `message` says what it is."""

    ok: bool
    first_bad_seq: int | None
    message: str
    checkpoint: int | None = None  # tree size at which the first bad checkpoint stands
    entries: int = 0  # entries checked and found good
    checkpoints: int = 0  # checkpoints checked and found good
    uncovered: int = 0  # good entries after the last good checkpoint (not yet signed by one)
    checkpoint_signers: tuple[str, ...] = ()
    signature_seconds: float = 0.0  # time spent checking entry signatures (summed over workers)


class _Bad(Exception):
    def __init__(self, message: str, *, seq: int | None = None, checkpoint: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.seq = seq
        self.checkpoint = checkpoint


_CHECKPOINT_MARKERS = (b'"checkpoint"', b'"tree_size"', b'"signer_key_id"', b'"root"')
_ENTRY_MARKERS = (b'"entry"', b'"actor_key_id"', b'"prev_hash"', b'"entry_hash"', b'"evidence_digest"')


def _parse(raw: bytes) -> tuple[str, Any]:
    """(kind, record) of one line, or MalformedRecord. The line must be exactly canonical."""
    if not raw.endswith(b"\n"):
        raise MalformedRecord("the line does not end with a newline")
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
        raise MalformedRecord(f"not JSON ({exc.__class__.__name__})") from None
    if not isinstance(value, dict) or len(value) != 1:
        raise MalformedRecord("not a one-key object")
    try:
        canonical = canonical_json(value) + b"\n"
    except (ValueError, RecursionError):
        raise MalformedRecord("holds a value that has no canonical form") from None
    if canonical != raw:
        raise MalformedRecord("not in canonical form (bytes differ from the canonical encoding)")
    ((kind, record),) = value.items()
    return kind, record


def _digest_of(evidence_json: str) -> str:
    # evidence_json is already canonical (records.entry_from_record re-encodes it).
    return DIGEST_PREFIX + sha256_hex(evidence_json.encode())


def _guess_kind(raw: bytes, checkpoint_expected: bool) -> str:
    """Which kind of line a damaged one was. One changed byte spoils at most one place: an intact
    prefix names the line (even when a lost newline glued the next one to it); otherwise the field
    names that survive decide, and a fragment with none is what the header says belongs there."""
    if raw.startswith(b'{"checkpoint":{'):
        return "checkpoint"
    if raw.startswith(b'{"entry":{'):
        return "entry"
    checkpoint = sum(m in raw for m in _CHECKPOINT_MARKERS)
    entry = sum(m in raw for m in _ENTRY_MARKERS)
    if checkpoint == entry == 0:
        return "checkpoint" if checkpoint_expected else "entry"
    return "checkpoint" if checkpoint > entry else "entry"


class _Lookahead:
    def __init__(self, lines: Iterable[bytes]) -> None:
        self._it: Iterator[bytes] = iter(lines)
        self._peeked: list[bytes] = []

    def next(self) -> bytes | None:
        if self._peeked:
            return self._peeked.pop()
        return next(self._it, None)

    def peek(self) -> bytes | None:
        if not self._peeked:
            nxt = next(self._it, None)
            if nxt is None:
                return None
            self._peeked.append(nxt)
        return self._peeked[0]


class _Verifier:
    def __init__(
        self, trusted_keys: Collection[str] | None, check_signatures: bool, jobs: int, pins: Mapping[int, str]
    ) -> None:
        self.trusted = None if trusted_keys is None else set(trusted_keys)
        self.pins = dict(pins)
        self.check_signatures = check_signatures
        self.signatures = _Signatures(jobs) if check_signatures else None
        self.good_sizes: list[int] = []
        self.keys: dict[str, KeyRecord] = {}
        self.public: dict[str, Ed25519PublicKey] = {}
        self.damaged_keys: list[int] = []
        self.frontier = Frontier()
        self.n = 0  # good entries so far
        self.prev_hash = GENESIS_HASH
        self.good_checkpoints = 0
        self.last_checkpoint = 0
        self.seen_sizes: set[int] = set()
        self.signers: set[str] = set()
        self.header: Header | None = None

    # -- driver ----------------------------------------------------------------------------------
    def run(self, lines: Iterable[bytes]) -> VerifyResult:
        try:
            try:
                self._run(_Lookahead(lines))
            except _Bad as bad:
                self._signature_failure(before=bad.seq or self.n + 1)
                return self._result(False, bad.message, bad.seq, bad.checkpoint)
            self._signature_failure(before=self.n + 1)
        except _Bad as bad:  # an entry signature, checked by a worker, failed first
            return self._result(False, bad.message, bad.seq, bad.checkpoint)
        finally:
            if self.signatures is not None:
                self.signatures.close()
        uncovered = self.n - self.last_checkpoint
        note = f"; {uncovered} entries after the last checkpoint are not yet covered by one" if uncovered else ""
        message = f"{self.n} entries and {self.good_checkpoints} checkpoints verified{note}"
        return self._result(True, message, None, None)

    def _signature_failure(self, before: int) -> None:
        """Raise for the first entry before seq `before` whose signature failed (in a worker)."""
        if self.signatures is None:
            return
        failed = self.signatures.first_failure(before)
        if failed is None:
            return
        seq, actor = failed
        # Everything from the failed entry on is unverified: roll the counts back to before it.
        self.n = seq - 1
        self.good_sizes = [size for size in self.good_sizes if size <= self.n]
        self.good_checkpoints = len(self.good_sizes)
        self.last_checkpoint = self.good_sizes[-1] if self.good_sizes else 0
        raise _Bad(f"entry {seq}: bad signature (not {actor}'s signature of this entry)", seq=seq)

    def _result(self, ok: bool, message: str, seq: int | None, checkpoint: int | None) -> VerifyResult:
        return VerifyResult(
            ok=ok,
            first_bad_seq=seq,
            message=message,
            checkpoint=checkpoint,
            entries=self.n,
            checkpoints=self.good_checkpoints,
            uncovered=self.n - self.last_checkpoint,
            checkpoint_signers=tuple(sorted(self.signers)),
            signature_seconds=self.signatures.seconds if self.signatures is not None else 0.0,
        )

    def _run(self, lines: _Lookahead) -> None:
        header = self._header(lines.next())
        for i in range(header.keys):
            self._key(i, lines.next())
        sizes = set(header.checkpoints)
        while (raw := lines.next()) is not None:
            expected = self.n in sizes and self.n not in self.seen_sizes
            try:
                kind, record = _parse(raw)
                if kind not in ("entry", "checkpoint"):
                    raise MalformedRecord(f"unexpected '{kind}' line")
            except MalformedRecord as exc:
                if _guess_kind(raw, expected) == "checkpoint":
                    raise _Bad(
                        f"the checkpoint line at tree size {self.n} is damaged: {exc}", checkpoint=self.n
                    ) from None
                raise _Bad(f"the line of entry {self.n + 1} is damaged: {exc}", seq=self.n + 1) from None
            if kind == "entry":
                if expected:
                    self._missing_or_inserted(lines)
                self._entry(record, header)
            else:
                self._checkpoint(record, sizes, expected)
        if self.n in sizes and self.n not in self.seen_sizes:
            raise _Bad(f"the checkpoint at tree size {self.n} is missing", checkpoint=self.n)
        if self.pins and max(self.pins) > self.n:
            raise _Bad(
                f"the ledger has {self.n} entries, fewer than the pinned tree size {max(self.pins)}",
                seq=self.n + 1,
            )
        if self.n < header.entries:
            raise _Bad(
                f"the bundle ends after entry {self.n} but its header lists {header.entries}: "
                f"entries from {self.n + 1} on are missing",
                seq=self.n + 1,
            )

    def _missing_or_inserted(self, lines: _Lookahead) -> None:
        """An entry where the checkpoint should be: either an entry was inserted before the
        checkpoint (which then follows) or the checkpoint was removed."""
        nxt = lines.peek()
        try:
            kind, record = _parse(nxt) if nxt is not None else ("", None)
            follows = kind == "checkpoint" and isinstance(record, dict) and record.get("tree_size") == self.n
        except MalformedRecord:
            follows = False
        if follows:
            raise _Bad(f"an extra entry stands before the checkpoint at tree size {self.n}", seq=self.n + 1)
        raise _Bad(f"the checkpoint at tree size {self.n} is missing", checkpoint=self.n)

    # -- parts -------------------------------------------------------------------------------------
    def _header(self, raw: bytes | None) -> Header:
        if raw is None:
            raise _Bad("the bundle is empty")
        try:
            kind, record = _parse(raw)
            if kind != "header":
                raise MalformedRecord("the first line is not the header")
            self.header = header_from_record(record)
        except MalformedRecord as exc:
            raise _Bad(f"the bundle header is damaged: {exc}") from None
        return self.header

    def _key(self, i: int, raw: bytes | None) -> None:
        if raw is None:
            raise _Bad("the bundle ends inside its key list")
        try:
            kind, record = _parse(raw)
            if kind != "key":
                raise MalformedRecord("not a key line")
            key = key_from_record(record)
        except MalformedRecord:
            # Entries signed by this key will fail with "unknown key": that locates the damage.
            self.damaged_keys.append(i)
            return
        if key.key_id in self.keys:
            self.damaged_keys.append(i)
            return
        try:
            self.public[key.key_id] = Ed25519PublicKey.from_public_bytes(bytes.fromhex(key.public_key))
        except ValueError:
            self.damaged_keys.append(i)
            return
        self.keys[key.key_id] = key

    def _unknown_key(self, key_id: str) -> str:
        damaged = f" ({len(self.damaged_keys)} key line(s) of the bundle are damaged)" if self.damaged_keys else ""
        return f"its key {key_id[:16]}… is not among the bundle's keys{damaged}"

    def _verify(self, key_id: str, signature: str, message: bytes) -> bool:
        try:
            self.public[key_id].verify(bytes.fromhex(signature), message)
        except InvalidSignature:
            return False
        return True

    def _entry(self, record: Any, header: Header) -> None:
        seq = self.n + 1
        try:
            entry: LedgerEntry = entry_from_record(record, verify_hashed_fields=False)
        except MalformedRecord as exc:
            raise _Bad(f"entry {seq} is malformed: {exc}", seq=seq) from None
        if entry.seq != seq:
            how = "appears again (duplicated or reordered)" if entry.seq < seq else "comes too early"
            raise _Bad(
                f"expected entry {seq} here but found entry {entry.seq}, which {how}: "
                "entries are missing, duplicated or out of order",
                seq=seq,
            )
        if seq > header.entries:
            raise _Bad(f"entry {seq} is beyond the {header.entries} entries the header lists", seq=seq)
        if entry_hash_of(entry.body()) != entry.entry_hash:
            raise _Bad(f"entry {seq}: hash mismatch (its content is not what was hashed)", seq=seq)
        if entry.prev_hash != self.prev_hash:
            raise _Bad(f"entry {seq}: broken link (prev_hash is not the hash of entry {seq - 1})", seq=seq)
        key = self.keys.get(entry.actor_key_id)
        if key is None:
            raise _Bad(f"entry {seq}: {self._unknown_key(entry.actor_key_id)}", seq=seq)
        if key.actor != entry.actor:
            raise _Bad(f"entry {seq}: actor '{entry.actor}' but the key belongs to '{key.actor}'", seq=seq)
        if self.signatures is not None:
            message = entry_signing_message(entry.entry_hash)
            if not self.signatures.check(seq, key.actor, self.public[entry.actor_key_id], entry.signature, message):
                raise _Bad(f"entry {seq}: bad signature (not {key.actor}'s signature of this entry)", seq=seq)
        if entry.evidence_json is not None and _digest_of(entry.evidence_json) != entry.evidence_digest:
            raise _Bad(f"entry {seq}: the evidence does not match its digest", seq=seq)
        self.frontier.append(bytes.fromhex(entry.entry_hash))
        self.prev_hash = entry.entry_hash
        self.n = seq
        pinned = self.pins.get(seq)
        if pinned is not None and self.frontier.root().hex() != pinned:
            raise _Bad(
                f"the Merkle root at tree size {seq} is not the pinned root {pinned[:16]}…: "
                f"entries 1..{seq} are not the ones an earlier checkpoint vouched for",
                checkpoint=seq,
            )

    def _checkpoint(self, record: Any, sizes: set[int], expected: bool) -> None:
        at = self.n
        try:
            cp: Checkpoint = checkpoint_from_record(record)
        except MalformedRecord as exc:
            raise _Bad(f"the checkpoint at tree size {at} is malformed: {exc}", checkpoint=at) from None
        if cp.tree_size != at:
            if not expected and cp.tree_size > at and cp.tree_size in sizes:
                raise _Bad(
                    f"entries {at + 1}..{cp.tree_size} are missing before the checkpoint at tree size {cp.tree_size}",
                    seq=at + 1,
                )
            raise _Bad(f"the checkpoint at tree size {at} states tree size {cp.tree_size}", checkpoint=at)
        if not expected:
            what = "a second checkpoint" if at in self.seen_sizes else "a checkpoint the header does not list"
            raise _Bad(f"{what} stands at tree size {at}", checkpoint=at)
        if cp.root != self.frontier.root().hex():
            raise _Bad(
                f"the checkpoint at tree size {at}: root mismatch (its Merkle root is not that of entries 1..{at})",
                checkpoint=at,
            )
        if cp.signer_key_id not in self.keys:
            raise _Bad(f"the checkpoint at tree size {at}: {self._unknown_key(cp.signer_key_id)}", checkpoint=at)
        if self.keys[cp.signer_key_id].actor != ORGANISATION_ACTOR:
            owner = self.keys[cp.signer_key_id].actor
            raise _Bad(
                f"the checkpoint at tree size {at} is signed by {owner}'s key, not an {ORGANISATION_ACTOR} key",
                checkpoint=at,
            )
        if self.trusted is not None and cp.signer_key_id not in self.trusted:
            raise _Bad(
                f"the checkpoint at tree size {at} is signed by key {cp.signer_key_id[:16]}…, not a trusted key",
                checkpoint=at,
            )
        if self.check_signatures and not self._verify(cp.signer_key_id, cp.signature, cp.statement()):
            raise _Bad(f"the checkpoint at tree size {at}: bad signature", checkpoint=at)
        self.seen_sizes.add(at)
        self.good_sizes.append(at)
        self.signers.add(cp.signer_key_id)
        self.good_checkpoints += 1
        self.last_checkpoint = at


def verify_lines(
    lines: Iterable[bytes],
    *,
    trusted_keys: Collection[str] | None = None,
    check_signatures: bool = True,
    jobs: int = 1,
    pinned_roots: Mapping[int, str] | None = None,
) -> VerifyResult:
    """Verify bundle lines (each with its trailing newline).

    Args:
        trusted_keys: key ids allowed to sign checkpoints (the organisation's published key). None
            accepts any organisation key the bundle lists — then the caller must compare
            `checkpoint_signers` with the key it expects, since whoever rewrites a whole bundle can
            sign it anew.
        check_signatures: False checks hashes, links and roots only (for timing the two apart).
        jobs: processes checking entry signatures (Ed25519 checks are ~70 % of the work); 1 checks
            them in line. The verdict is the same either way: the first bad entry wins.
        pinned_roots: tree size -> hex Merkle root an auditor already holds (from an earlier bundle
            or proof). The ledger must reproduce each: this catches a history rewritten and re-signed
            by someone holding the organisation key, which no signature check can.
    """
    return _Verifier(trusted_keys, check_signatures, jobs, pinned_roots or {}).run(lines)


# -- entry signatures, in line or in worker processes ---------------------------------------------
_CHUNK = 4096


def _first_bad_signature(items: list[tuple[bytes, bytes, bytes]]) -> tuple[int | None, float]:
    """(index of the first item whose signature fails, seconds spent): runs in a worker process."""
    start = time.perf_counter()
    keys: dict[bytes, Ed25519PublicKey] = {}
    for i, (public, signature, message) in enumerate(items):
        key = keys.get(public) or keys.setdefault(public, Ed25519PublicKey.from_public_bytes(public))
        try:
            key.verify(signature, message)
        except InvalidSignature:
            return i, time.perf_counter() - start
    return None, time.perf_counter() - start


class _Signatures:
    """Checks entry signatures now (jobs=1) or hands them to worker processes in chunks, keeping at
    most a few chunks in flight so memory stays bounded however fast the chain checks run."""

    def __init__(self, jobs: int) -> None:
        self.jobs = max(1, jobs)
        self.seconds = 0.0
        self._pool: ProcessPoolExecutor | None = None
        self._chunk: list[tuple[bytes, bytes, bytes]] = []
        self._meta: list[tuple[int, str]] = []
        self._inflight: deque[tuple[Future[tuple[int | None, float]], list[tuple[int, str]]]] = deque()
        self._failure: tuple[int, str] | None = None

    def check(self, seq: int, actor: str, key: Ed25519PublicKey, signature: str, message: bytes) -> bool:
        """False when the signature is known bad now; a deferred failure surfaces in `first_failure`."""
        if self.jobs == 1:
            start = time.perf_counter()
            try:
                key.verify(bytes.fromhex(signature), message)
            except InvalidSignature:
                return False
            finally:
                self.seconds += time.perf_counter() - start
            return True
        public = key.public_bytes(Encoding.Raw, PublicFormat.Raw)
        self._chunk.append((public, bytes.fromhex(signature), message))
        self._meta.append((seq, actor))
        if len(self._chunk) >= _CHUNK:
            self._submit()
        return True

    def _submit(self) -> None:
        if not self._chunk:
            return
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self.jobs)
        while len(self._inflight) >= 2 * self.jobs and self._failure is None:
            self._collect_oldest()
        self._inflight.append((self._pool.submit(_first_bad_signature, self._chunk), self._meta))
        self._chunk, self._meta = [], []

    def _collect_oldest(self) -> None:
        future, meta = self._inflight.popleft()
        index, seconds = future.result()
        self.seconds += seconds
        if index is not None and self._failure is None:
            self._failure = meta[index]

    def first_failure(self, before: int) -> tuple[int, str] | None:
        """(seq, actor) of the first failed signature among entries before seq `before`, if any."""
        self._submit()
        while self._inflight and self._failure is None:
            self._collect_oldest()
        if self._failure is not None and self._failure[0] < before:
            return self._failure
        return None

    def close(self) -> None:
        for future, _ in self._inflight:
            future.cancel()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
