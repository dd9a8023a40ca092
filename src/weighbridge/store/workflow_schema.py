"""Users, roles and review workflow tables (migration 0006).

The rows here are a convenient index, not the record of truth: every row written here has a ledger
entry signed by its actor, and `weighbridge.workflow.verify` checks the rows against those entries,
so a row edited in the database (a forged approval, a swapped public key) is detected.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from weighbridge.store.base import Base, SafeText, UTCDateTime, utcnow


class UserRow(Base):
    """A person (or service) who acts in reviews: their public key and roles. Never a private key."""

    __tablename__ = "users"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary)  # raw 32-byte Ed25519
    key_id: Mapped[str] = mapped_column(String(64), unique=True)
    roles: Mapped[str] = mapped_column(String(255))  # comma-separated, sorted
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ReviewRow(Base):
    """One review of one submission; `state` and `paused` are the replay of its events."""

    __tablename__ = "reviews"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    submission_id: Mapped[str] = mapped_column(ForeignKey("submissions.id"), index=True)
    previous_review_id: Mapped[str | None] = mapped_column(ForeignKey("reviews.id"), nullable=True)
    state: Mapped[str] = mapped_column(String(32))
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    clock_started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ReviewEventRow(Base):
    """One workflow action on a review, with the ledger entry (by sequence number) that signs it."""

    __tablename__ = "review_events"
    __table_args__ = (UniqueConstraint("review_id", "seq", name="uq_review_events_review_seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    review_id: Mapped[str] = mapped_column(ForeignKey("reviews.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)  # position within the review, from 0
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    from_state: Mapped[str | None] = mapped_column(String(32), nullable=True)
    to_state: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(SafeText)  # canonical JSON
    ledger_seq: Mapped[int | None] = mapped_column(Integer, nullable=True)
