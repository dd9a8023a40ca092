"""Custody tables: the master-key record, the encrypted objects and the access log.

Kept beside `schema.py` (same `Base`, from `store.base`; `schema.py` imports this module at its end
so `Base.metadata` is complete) because custody is its own area; the migration is `migrations/versions/0002_custody.py`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from weighbridge.store.base import Base, SafeText, UTCDateTime, utcnow


class CustodyKeyRow(Base):
    """The store's master-key record: how to re-derive the key from its secret, and a check value
    that opens only under the right key. Never the key itself."""

    __tablename__ = "custody_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # passphrase | keyfile
    kdf: Mapped[str] = mapped_column(String(16))  # argon2id | scrypt | none
    kdf_params_json: Mapped[str] = mapped_column(SafeText)
    salt: Mapped[bytes] = mapped_column(LargeBinary)
    check_value: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CustodyObjectRow(Base):
    """One encrypted file of a submission, with what is needed to open and check it."""

    __tablename__ = "custody_objects"
    __table_args__ = (
        UniqueConstraint("submission_id", "n", name="uq_custody_objects_submission_n"),
        UniqueConstraint("submission_id", "path", name="uq_custody_objects_submission_path"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    submission_id: Mapped[str] = mapped_column(ForeignKey("submissions.id"), index=True)
    key_id: Mapped[int] = mapped_column(ForeignKey("custody_keys.id"))
    n: Mapped[int] = mapped_column(Integer)  # position in the manifest; the blob is <submission>/<n>.wbc
    path: Mapped[str] = mapped_column(String(1024))  # the manifest path of the plaintext file
    blob: Mapped[str] = mapped_column(String(255))  # relative to the custody root
    wrapped_data_key: Mapped[bytes] = mapped_column(LargeBinary)
    nonce_prefix: Mapped[bytes] = mapped_column(LargeBinary)
    chunk_bytes: Mapped[int] = mapped_column(Integer)
    plaintext_sha256: Mapped[str] = mapped_column(String(64))
    plaintext_bytes: Mapped[int] = mapped_column(BigInteger)
    # Lets a backup be checked with sha256sum, without the key.
    ciphertext_sha256: Mapped[str] = mapped_column(String(64))
    ciphertext_bytes: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AccessLogRow(Base):
    """Who touched which weights, how and why. Append-only: nothing updates or deletes rows.

    `submission_id` is not a foreign key on purpose: the log must accept entries about anything
    (a sweep of stale plaintext names no submission) and must never block a write elsewhere.
    """

    __tablename__ = "access_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(255))
    # deposit | verify | materialize | release | denied (a refused decryption) | sweep | rotate
    action: Mapped[str] = mapped_column(String(32))
    submission_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    purpose: Mapped[str] = mapped_column(SafeText)
    detail: Mapped[str] = mapped_column(SafeText)  # JSON
