"""Checking a review's record against the signed ledger.

The `users` and `review_events` rows are an index anyone with database access could edit. What
cannot be forged without a private key is the ledger: each event must match an entry (action,
subject, actor, digest of everything the row says) whose signature verifies under the key that an
admin registered for that actor, in a `user.add` entry earlier in the ledger, with roles that allow
the action. A key merely present in the ledger's key table proves nothing: anyone can add one.

The chain itself (hashes, order, checkpoints) is `weighbridge ledger verify`'s job; this module
answers the workflow's question "did these people really do these things?". `orphans` answers the
store-wide one `ledger verify` adds: does every signed workflow action have its event row, and every
event row its signed action? An action is signed first and recorded second, so a process that stops
in between leaves a signed entry that the workflow never counted; nothing else would notice it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import select

from weighbridge.ledger.canonical import evidence_digest
from weighbridge.ledger.records import LedgerEntry, entry_hash_of, entry_signing_message
from weighbridge.ledger.signing import key_id_of, verify_signature
from weighbridge.services.evidence import trusted_evidence
from weighbridge.services.ledger import entry_of
from weighbridge.store.db import Store
from weighbridge.store.ledger_schema import LedgerEntryRow
from weighbridge.store.workflow_schema import ReviewEventRow, ReviewRow, UserRow
from weighbridge.workflow.events import LEDGER_PREFIX, OVERRIDE_ACTION, ReviewView, event_digest
from weighbridge.workflow.states import Event, Role, permitted

USER_ACTION = "user.add"
# An admin's override of a gate (e.g. missing evidence) is its own entry (`OVERRIDE_ACTION`), signed
# before the action it lets through; that action's event names it in its detail as `override_entry`.
OVERRIDE_KEY = "override_entry"


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
        elif "override" in event.detail:
            problems += _override_problems(store, view.id, what, event, reg)
    if row.state != view.state.value or row.paused != view.status.paused:
        problems.append(f"the review's state ({row.state}) is not what its events lead to ({view.state.value})")
    return problems


def _override_problems(store: Store, review_id: str, what: str, event: Event, reg: Registration) -> list[str]:
    """An overridden gate counts only when an admin signed the `review.override` entry it names,
    for this review and this action."""
    if Role.ADMIN not in reg.roles:
        return [f"{what} overrides a missing-evidence gate, but {event.actor} is not a registered admin"]
    try:
        seq = int(event.detail.get("override_entry", ""))
    except ValueError:
        return [f"{what} overrides a gate without naming its override entry"]
    found = _entries(store, seqs=[seq])
    entry = found[0] if found else None
    evidence = trusted_evidence(entry) if entry is not None else None
    if (
        entry is None
        or evidence is None
        or (entry.action, entry.subject, entry.actor) != (OVERRIDE_ACTION, review_id, event.actor)
        or evidence.get("action") != event.action.value
        or evidence.get("reason") != event.detail.get("override")
        or not entry_signed_by(entry, reg.public_key)
    ):
        return [f"{what}: its override entry {seq} is missing, altered or not signed by {event.actor}"]
    return []


def _entries(store: Store, *, action: str | None = None, seqs: Iterable[int] | None = None) -> list[LedgerEntry]:
    query = select(LedgerEntryRow).order_by(LedgerEntryRow.seq)
    if action is not None:
        query = query.where(LedgerEntryRow.action == action)
    if seqs is not None:
        query = query.where(LedgerEntryRow.seq.in_(list(seqs)))
    with store.session() as s:
        rows = s.scalars(query).all()
    return [entry_of(r) for r in rows]


@dataclass(frozen=True)
class SignedAction:
    """The parts of a `review.*` ledger entry the cross-check compares (not its signature: the
    chain and the per-review check verify those)."""

    seq: int
    action: str
    actor: str
    subject: str


@dataclass(frozen=True)
class EventRecord:
    """The parts of a `review_events` row the cross-check compares."""

    review_id: str
    seq: int
    actor: str
    action: str
    ledger_seq: int | None
    detail: str  # canonical JSON, as stored


def orphans(store: Store) -> list[str]:
    """Where the ledger and the `review_events` rows disagree about which workflow actions happened;
    empty when each `review.*` entry is recorded by exactly one event and each event by its entry.

    Store-wide and cheap (no signatures), so `weighbridge ledger verify` runs it on every store check.
    """
    with store.session() as s:
        entries = [
            SignedAction(int(r.seq), r.action, r.actor, r.subject)
            for r in s.execute(
                select(LedgerEntryRow.seq, LedgerEntryRow.action, LedgerEntryRow.actor, LedgerEntryRow.subject)
                .where(LedgerEntryRow.action.startswith(LEDGER_PREFIX, autoescape=True))
                .order_by(LedgerEntryRow.seq)
            )
        ]
        events = [
            EventRecord(r.review_id, r.seq, r.actor, r.action, r.ledger_seq, r.detail)
            for r in s.execute(
                select(
                    ReviewEventRow.review_id,
                    ReviewEventRow.seq,
                    ReviewEventRow.actor,
                    ReviewEventRow.action,
                    ReviewEventRow.ledger_seq,
                    ReviewEventRow.detail,
                ).order_by(ReviewEventRow.review_id, ReviewEventRow.seq)
            )
        ]
        reviews = set(s.scalars(select(ReviewRow.id)))
        known = {e.seq for e in entries}
        elsewhere = {e.ledger_seq for e in events if e.ledger_seq is not None} - known
        # Entries outside the workflow that an event points at: loaded only to name them.
        entries += [
            SignedAction(int(r.seq), r.action, r.actor, r.subject)
            for r in s.execute(
                select(LedgerEntryRow.seq, LedgerEntryRow.action, LedgerEntryRow.actor, LedgerEntryRow.subject).where(
                    LedgerEntryRow.seq.in_(sorted(elsewhere))
                )
            )
        ]
    return cross_check(entries, events, reviews)


def cross_check(entries: Sequence[SignedAction], events: Sequence[EventRecord], reviews: set[str]) -> list[str]:
    """The problems `orphans` reports, from rows already loaded (pure, so each case is testable by hand).

    `entries` must hold every `review.*` entry, plus any other entry an event points at.
    """
    by_seq = {e.seq: e for e in entries}
    problems: list[str] = []
    claimed: dict[int, EventRecord] = {}  # ledger seq -> the first event that points at it
    overrides: set[tuple[str, str]] = set()  # (review id, override entry seq) named by events
    for ev in events:
        what = f"event {ev.seq} of review {ev.review_id[:8]} ({ev.action} by {ev.actor})"
        override = _detail(ev.detail).get(OVERRIDE_KEY)
        if override is not None:
            overrides.add((ev.review_id, str(override)))
        if ev.ledger_seq is None:
            problems.append(f"{what} names no ledger entry: it was recorded without being signed")
            continue
        entry = by_seq.get(ev.ledger_seq)
        if entry is None:
            problems.append(
                f"{what} points at ledger entry {ev.ledger_seq}, which does not exist: the row was written "
                "into the database by hand, or the ledger lost entries"
            )
            continue
        if (entry.action, entry.subject, entry.actor) != (LEDGER_PREFIX + ev.action, ev.review_id, ev.actor):
            problems.append(
                f"{what} points at ledger entry {entry.seq}, which is {entry.action} by {entry.actor} on "
                f"{entry.subject[:8]}, not {LEDGER_PREFIX}{ev.action} by {ev.actor} on this review"
            )
            continue
        first = claimed.setdefault(entry.seq, ev)
        if first is not ev:
            problems.append(
                f"{what} points at ledger entry {entry.seq}, which already records event {first.seq}: "
                "one signature cannot stand for two actions"
            )
    pointed_at = {ev.ledger_seq for ev in events}
    for entry in entries:
        if not entry.action.startswith(LEDGER_PREFIX):
            continue
        on = f"review {entry.subject[:8]}" + ("" if entry.subject in reviews else ", which was never created")
        what = f"ledger entry {entry.seq} ({entry.action} by {entry.actor} on {on})"
        if entry.action == OVERRIDE_ACTION:
            # Not an action of its own: it is recorded by the event of the action it let through.
            if (entry.subject, str(entry.seq)) not in overrides:
                problems.append(
                    f"{what} is named by no event of that review ({OVERRIDE_KEY}={entry.seq}): the override "
                    "was signed but the action it allowed was never recorded, so the action did not happen"
                )
        elif entry.seq not in pointed_at:  # an entry a mismatched event points at is reported above
            problems.append(
                f"{what} has no workflow event: the process stopped between signing the action and recording "
                "it (or the event row was deleted), so the review does not count it; take the action again "
                "if it was meant (the entry stays in the ledger as the record of the attempt)"
            )
    return problems


def _detail(text: str) -> dict[str, object]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
