"""Sign-in for the API (migration 0012): password hashes, API tokens and login sessions.

Nothing here is a secret in the clear: passwords are argon2 hashes, tokens and session ids are
stored as SHA-256 digests (they are 256-bit random values, so a slow hash adds nothing), and no
private key is ever written. A stolen database copy lets nobody sign in or sign a ledger entry.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from weighbridge.store.base import Base, SafeText, UTCDateTime, utcnow


class PasswordRow(Base):
    """A user's login password (argon2id, parameters inside the hash string)."""

    __tablename__ = "api_passwords"

    user_name: Mapped[str] = mapped_column(ForeignKey("users.name"), primary_key=True)
    password_hash: Mapped[str] = mapped_column(SafeText)
    set_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ApiTokenRow(Base):
    """A bearer token for scripts: expires, can be revoked, shows only its prefix after creation."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_name: Mapped[str] = mapped_column(ForeignKey("users.name"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(SafeText)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ApiSessionRow(Base):
    """A login session: ends at `expires_at` or at logout (`ended_at`), whichever comes first."""

    __tablename__ = "api_sessions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_name: Mapped[str] = mapped_column(ForeignKey("users.name"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
