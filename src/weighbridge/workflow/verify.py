"""Checking a review's record against the signed ledger.

The `users` and `review_events` rows are an index anyone with database access could edit. What
cannot be forged without a private key is the ledger: each event must match an entry (action,
subject, actor, digest of everything the row says) whose signature verifies under the key that an
admin registered for that actor, in a `user.add` entry earlier in the ledger, with roles that allow
the action. A key merely present in the ledger's key table proves nothing: anyone can add one.

The chain itself (hashes, order, checkpoints) is `weighbridge ledger verify`'s job; this module
answers the workflow's question "did these people really do these things?".
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select

from weighbridge.ledger.canonical import evidence_digest
from weighbridge.ledger.records import LedgerEntry, entry_hash_of, entry_signing_message
from weighbridge.ledger.signing import key_id_of, verify_signature
from weighbridge.services.ledger import entry_of
from weighbridge.store.db import Store
from weighbridge.store.ledger_schema import LedgerEntryRow
from weighbridge.store.workflow_schema import ReviewEventRow, ReviewRow, UserRow
from weighbridge.workflow.service import LEDGER_PREFIX, ReviewView, event_digest
from weighbridge.workflow.states import Role, permitted

USER_ACTION = "user.add"


@dataclass(frozen=True)
class Registration:
    """A user as the ledger knows them: key and roles from a verified `user.add` entry."""

    name: str
    public_key: bytes
    roles: frozenset[Role]
    seq: int


def entry_signed_by(entry: LedgerEntry, public_key: bytes) -> bool:
    """The entry's hash is right and `public_key` signed it."""
    if key_id_of(public_key) != entry.actor_key_id or entry_hash_of(entry.body()) != entry.entry_hash:
        return False
    try:
        signature = bytes.fromhex(entry.signature)
    except ValueError:
        return False
    return verify_signature(public_key, signature, entry_signing_message(entry.entry_hash))


def registrations(store: Store) -> tuple[dict[str, Registration], list[str]]:
    """Users registered in the ledger (latest registration per name wins) and problems found.

    The first `user.add` may sign itself (the bootstrap admin); every later one must be signed by
    a user the ledger already knows as an admin.
    """
    known: dict[str, Registration] = {}
    problems: list[str] = []
    for entry in _entries(store, action=USER_ACTION):
        where = f"ledger entry {entry.seq} (user.add {entry.subject})"
        try:
            evidence = json.loads(entry.evidence_json or "")
            public_key = bytes.fromhex(evidence["public_key"])
            roles = frozenset(Role(r) for r in evidence["roles"])
        except (ValueError, KeyError, TypeError):
            problems.append(f"{where}: unreadable registration evidence")
            continue
        if evidence_digest(evidence) != entry.evidence_digest or evidence.get("name") != entry.subject:
            problems.append(f"{where}: the registration does not match its digest")
            continue
        signer = known.get(entry.actor)
        if not known and entry.actor == entry.subject:
            signer_key = public_key  # the bootstrap: the first user registers themselves
        elif signer is not None and Role.ADMIN in signer.roles:
            signer_key = signer.public_key
        else:
            problems.append(f"{where}: registered by {entry.actor}, who is not a registered admin")
            continue
        if not entry_signed_by(entry, signer_key):
            problems.append(f"{where}: the signature does not verify under {entry.actor}'s registered key")
            continue
        known[entry.subject] = Registration(entry.subject, public_key, roles, entry.seq)
    return known, problems


def verify_users(store: Store) -> list[str]:
    """Users whose row disagrees with the ledger (a swapped key, added roles, a user nobody registered)."""
    known, problems = registrations(store)
    with store.session() as s:
        rows = s.scalars(select(UserRow).order_by(UserRow.name)).all()
    for row in rows:
        reg = known.get(row.name)
        if reg is None:
            problems.append(f"user {row.name} is in the database but no admin registered them in the ledger")
        elif reg.public_key != row.public_key or reg.roles != frozenset(Role(r) for r in row.roles.split(",") if r):
            problems.append(f"user {row.name}: key or roles in the database differ from their ledger registration")
    return problems


def verify_events(store: Store, view: ReviewView) -> list[str]:
    """Problems with a review's events (see the module docstring); empty when all is well."""
    known, problems = registrations(store)
    with store.session() as s:
        row = s.get_one(ReviewRow, view.id)
        ledger_seqs = list(
            s.scalars(
                select(ReviewEventRow.ledger_seq)
                .where(ReviewEventRow.review_id == view.id)
                .order_by(ReviewEventRow.seq)
            )
        )
    entries = {e.seq: e for e in _entries(store, seqs=[q for q in ledger_seqs if q is not None])}
    for i, (event, ledger_seq) in enumerate(zip(view.events, ledger_seqs, strict=True)):
        what = f"event {event.seq} ({event.action.value} by {event.actor})"
        entry = entries.get(ledger_seq) if ledger_seq is not None else None
        if entry is None:
            problems.append(f"{what} has no ledger entry")
            continue
        if (entry.action, entry.subject, entry.actor) != (LEDGER_PREFIX + event.action.value, view.id, event.actor):
            problems.append(f"{what} does not match ledger entry {entry.seq} ({entry.action} by {entry.actor})")
            continue
        if entry.evidence_digest != event_digest(view, i):
            problems.append(f"{what} was edited: it differs from what ledger entry {entry.seq} signed")
            continue
        reg = known.get(event.actor)
        if reg is None or reg.seq > entry.seq:
            problems.append(f"{what}: {event.actor} was not a registered user at the time")
        elif not entry_signed_by(entry, reg.public_key):
            problems.append(f"{what}: ledger entry {entry.seq} is not signed by {event.actor}'s registered key")
        elif not permitted(event.action, reg.roles):
            problems.append(f"{what}: {event.actor}'s registered roles do not allow it")
    if row.state != view.state.value or row.paused != view.status.paused:
        problems.append(f"the review's state ({row.state}) is not what its events lead to ({view.state.value})")
    return problems


def _entries(store: Store, *, action: str | None = None, seqs: Iterable[int] | None = None) -> list[LedgerEntry]:
    query = select(LedgerEntryRow).order_by(LedgerEntryRow.seq)
    if action is not None:
        query = query.where(LedgerEntryRow.action == action)
    if seqs is not None:
        query = query.where(LedgerEntryRow.seq.in_(list(seqs)))
    with store.session() as s:
        rows = s.scalars(query).all()
    return [entry_of(r) for r in rows]
