"""Published notices and revocations (migration 0007), and the functions that read and write them.

The envelope is stored as its exact file bytes: the row is a copy of what was published, so
`notice show` and re-publication hand out the very bytes that were signed. Revocations are rows
too; the signed revocation list is regenerated from them (and re-signed) on every revocation.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, Integer, LargeBinary, String, select
from sqlalchemy.orm import Mapped, mapped_column

from weighbridge.errors import WeighbridgeError
from weighbridge.store.base import Base, SafeText, UTCDateTime, utcnow

if TYPE_CHECKING:
    from weighbridge.notice import Envelope, RevocationList
    from weighbridge.store.db import Store


class NoticeRow(Base):
    """A published notice: the signed envelope and the fields to find it by."""

    __tablename__ = "notices"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the notice id inside the statement
    review_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    submission_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    model_name: Mapped[str] = mapped_column(String(255))
    manifest_digest: Mapped[str] = mapped_column(String(64), index=True)
    key_id: Mapped[str] = mapped_column(String(64))
    decided_release: Mapped[str] = mapped_column(String(32))
    published_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    envelope: Mapped[bytes] = mapped_column(LargeBinary)


class NoticeRevocationRow(Base):
    """A notice withdrawn by the organisation: who, when and why. At most one per notice."""

    __tablename__ = "notice_revocations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    notice_id: Mapped[str] = mapped_column(ForeignKey("notices.id"), unique=True)
    reason: Mapped[str] = mapped_column(SafeText)
    actor: Mapped[str] = mapped_column(String(64))
    revoked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


def save_notice(
    store: Store, envelope: Envelope, *, review_id: str | None = None, submission_id: str | None = None
) -> NoticeRow:
    """Record a signed notice (its content is read from the envelope, so the row cannot disagree)."""
    from weighbridge.notice import read_notice

    content = read_notice(envelope)
    row = NoticeRow(
        id=content.notice_id,
        review_id=review_id,
        submission_id=submission_id,
        model_name=content.model_name[:255],
        manifest_digest=content.manifest_digest,
        key_id=content.reviewer_key_id,
        decided_release=content.decided_release,
        published_at=content.dates.published,
        envelope=envelope.to_bytes(),
    )
    with store.session() as s:
        if s.get(NoticeRow, row.id) is not None:
            raise WeighbridgeError(f"Notice {row.id} is already recorded", "Issue a new notice id")
        s.add(row)
    return row


def find_notice(store: Store, prefix: str) -> NoticeRow:
    with store.session() as s:
        rows = s.scalars(select(NoticeRow).where(NoticeRow.id.startswith(prefix, autoescape=True))).all()
    if len(rows) != 1:
        what = "No notice" if not rows else f"{len(rows)} notices"
        raise WeighbridgeError(f"{what} with id starting '{prefix}'", "List them with `weighbridge notice list`")
    return rows[0]


def list_notices(store: Store) -> Sequence[NoticeRow]:
    with store.session() as s:
        return s.scalars(select(NoticeRow).order_by(NoticeRow.published_at, NoticeRow.id)).all()


def revoke_notice(
    store: Store, notice_id: str, reason: str, actor: str, at: datetime | None = None
) -> NoticeRevocationRow:
    """Record a revocation. Raises `WeighbridgeError` for an unknown or already revoked notice."""
    if not reason.strip():
        raise WeighbridgeError("A revocation needs a reason", "Say why with --reason; the public reads it")
    row = NoticeRevocationRow(notice_id=notice_id, reason=reason.strip(), actor=actor, revoked_at=at or utcnow())
    with store.session() as s:
        if s.get(NoticeRow, notice_id) is None:
            raise WeighbridgeError(f"No notice {notice_id}", "List notices with `weighbridge notice list`")
        existing = s.scalars(select(NoticeRevocationRow).where(NoticeRevocationRow.notice_id == notice_id)).first()
        if existing is not None:
            raise WeighbridgeError(
                f"Notice {notice_id} was already revoked on {existing.revoked_at:%Y-%m-%d}", "Nothing to do"
            )
        s.add(row)
    return row


def revocation_list(store: Store, issued_at: datetime | None = None) -> RevocationList:
    """Every revocation in the store, as the list to sign and publish."""
    from weighbridge.notice import Revocation, RevocationList

    with store.session() as s:
        rows = s.scalars(select(NoticeRevocationRow).order_by(NoticeRevocationRow.revoked_at)).all()
    entries = tuple(Revocation(r.notice_id, r.reason, r.revoked_at) for r in rows)
    return RevocationList(issued_at or utcnow(), entries)
