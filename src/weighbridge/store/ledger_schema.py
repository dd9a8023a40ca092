"""Ledger tables: keys, entries and signed checkpoints (append-only; migration 0005).

Append-only is enforced by the database itself: migration 0005 installs triggers that abort any
UPDATE or DELETE (and TRUNCATE on PostgreSQL) of these rows. The triggers stop accidents and casual
edits; tampering by someone who can drop them is what the hashes and signatures reveal.

Times and hashes are stored as the exact strings that were hashed, never re-typed by the database,
so an entry read back hashes to what it hashed to when written.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from weighbridge.store.base import Base, UTCDateTime, utcnow


class LedgerKeyRow(Base):
    """A public key by its id and the actor it belongs to, so that a ledger verifies on its own."""

    __tablename__ = "ledger_keys"

    key_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    actor: Mapped[str] = mapped_column(String(255))
    public_key: Mapped[str] = mapped_column(String(64))  # hex of the raw Ed25519 key
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LedgerEntryRow(Base):
    __tablename__ = "ledger_entries"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    time: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(255))
    actor_key_id: Mapped[str] = mapped_column(ForeignKey("ledger_keys.key_id"))
    action: Mapped[str] = mapped_column(String(64), index=True)
    subject: Mapped[str] = mapped_column(String(255), index=True)
    evidence_digest: Mapped[str] = mapped_column(String(71))
    # Canonical JSON of mapping evidence (readable copy, checked against the digest); NULL for bytes.
    evidence_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64), unique=True)
    signature: Mapped[str] = mapped_column(String(128))


class LedgerCheckpointRow(Base):
    __tablename__ = "ledger_checkpoints"

    tree_size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root: Mapped[str] = mapped_column(String(64))
    time: Mapped[str] = mapped_column(String(32))
    signer_key_id: Mapped[str] = mapped_column(ForeignKey("ledger_keys.key_id"))
    signature: Mapped[str] = mapped_column(String(128))
    # The Merkle frontier at this size (hex hashes, JSON): the next checkpoint resumes from it
    # instead of rehashing the whole ledger. Not exported; a wrong one yields a root that fails.
    frontier_json: Mapped[str] = mapped_column(Text)
