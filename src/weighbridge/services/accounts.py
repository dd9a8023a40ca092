"""Sign-in for the API: login passwords, API tokens and login sessions, kept as hashes.

A password proves who is asking; it does not sign anything. Signing stays with the user's own
Ed25519 key (see `services.identity`), which the API unlocks separately (docs/api.md says how and
why). So a password here is an extra credential, set by an admin or by the user (both ledgered),
never a replacement for the key.

Passwords are argon2id hashes (`argon2-cffi`; the cost parameters travel inside each hash, so
raising them later re-hashes on the next login). Tokens and session ids are 256-bit random strings
stored as SHA-256 digests: a slow hash protects guessable secrets, and these are not guessable.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select

from weighbridge.errors import WeighbridgeError
from weighbridge.services.identity import Actor, get_user
from weighbridge.services.ledger import append_as
from weighbridge.store.auth_schema import ApiSessionRow, ApiTokenRow, PasswordRow
from weighbridge.store.base import utcnow
from weighbridge.store.db import Store
from weighbridge.workflow.states import Role

PASSWORD_ACTION = "user.password"
MIN_PASSWORD_CHARS = 12
TOKEN_PREFIX = "wbt_"
SESSION_PREFIX = "wbs_"
# Hashed once at import: verified against when the user has no password, so that "no such user"
# costs as long as "wrong password" and the response time does not tell which names exist.
_DUMMY_HASH = PasswordHasher().hash(secrets.token_hex(16))


@dataclass(frozen=True)
class ApiToken:
    id: str
    user: str
    label: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class SessionRecord:
    id: str
    user: str
    expires_at: datetime


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def set_password(store: Store, by: Actor, name: str, password: str, hasher: PasswordHasher | None = None) -> None:
    """Set `name`'s login password: an admin for anyone, a user for themself; a signed ledger entry
    records who set whose password (never the password or its hash)."""
    user = get_user(store, name)
    if by.name != user.name and not by.has(Role.ADMIN):
        raise WeighbridgeError(f"{by.name} may not set {name}'s password: that needs the admin role", "Ask an admin")
    if len(password) < MIN_PASSWORD_CHARS:
        raise WeighbridgeError(
            f"A password needs at least {MIN_PASSWORD_CHARS} characters", "Choose a longer one (a passphrase)"
        )
    hashed = (hasher or PasswordHasher()).hash(password)
    with store.session() as s:
        row = s.get(PasswordRow, user.name)
        if row is None:
            s.add(PasswordRow(user_name=user.name, password_hash=hashed, set_by=by.name, updated_at=utcnow()))
        else:
            row.password_hash, row.set_by, row.updated_at = hashed, by.name, utcnow()
    append_as(store, by, PASSWORD_ACTION, user.name, {"name": user.name, "set_by": by.name})


def check_password(store: Store, name: str, password: str, hasher: PasswordHasher | None = None) -> bool:
    """Whether `password` is `name`'s; False for an unknown user or one without a password, after
    the same work as a real check."""
    ph = hasher or PasswordHasher()
    with store.session() as s:
        row = s.get(PasswordRow, name)
    try:
        ph.verify(row.password_hash if row else _DUMMY_HASH, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    if row is None:
        return False
    if ph.check_needs_rehash(row.password_hash):
        with store.session() as s:
            s.get_one(PasswordRow, name).password_hash = ph.hash(password)
    return True


# -- sessions -------------------------------------------------------------------------------------


def start_session(store: Store, name: str, ttl: timedelta) -> tuple[SessionRecord, str]:
    """A new session for `name` and its secret (returned once, stored only as a digest)."""
    secret = SESSION_PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    row = ApiSessionRow(
        id=str(uuid.uuid4()), user_name=name, token_hash=digest(secret), created_at=now, expires_at=now + ttl
    )
    with store.session() as s:
        s.add(row)
    return SessionRecord(row.id, name, row.expires_at), secret


def find_session(store: Store, secret: str) -> SessionRecord | None:
    """The live session with this secret, None when unknown, ended or expired."""
    with store.session() as s:
        row = s.scalars(select(ApiSessionRow).where(ApiSessionRow.token_hash == digest(secret))).first()
    if row is None or row.ended_at is not None or row.expires_at <= utcnow():
        return None
    return SessionRecord(row.id, row.user_name, row.expires_at)


def end_session(store: Store, session_id: str) -> None:
    with store.session() as s:
        row = s.get(ApiSessionRow, session_id)
        if row is not None and row.ended_at is None:
            row.ended_at = utcnow()


# -- API tokens -----------------------------------------------------------------------------------


def _token(row: ApiTokenRow) -> ApiToken:
    return ApiToken(row.id, row.user_name, row.label, row.created_at, row.expires_at, row.revoked_at)


def create_token(store: Store, name: str, label: str, ttl: timedelta) -> tuple[ApiToken, str]:
    """A new API token for `name` and its secret (shown once)."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    row = ApiTokenRow(
        id=str(uuid.uuid4()),
        user_name=name,
        token_hash=digest(secret),
        label=label,
        created_at=now,
        expires_at=now + ttl,
        revoked_at=None,
    )
    with store.session() as s:
        s.add(row)
    return _token(row), secret


def find_token(store: Store, secret: str) -> ApiToken | None:
    """The live token with this secret, None when unknown, revoked or expired."""
    with store.session() as s:
        row = s.scalars(select(ApiTokenRow).where(ApiTokenRow.token_hash == digest(secret))).first()
    if row is None or row.revoked_at is not None or row.expires_at <= utcnow():
        return None
    return _token(row)


def list_tokens(store: Store, name: str) -> list[ApiToken]:
    with store.session() as s:
        rows = s.scalars(select(ApiTokenRow).where(ApiTokenRow.user_name == name).order_by(ApiTokenRow.created_at))
        return [_token(r) for r in rows]


def revoke_token(store: Store, name: str, token_id: str) -> ApiToken:
    """Revoke one of `name`'s own tokens (another user's token is "not found", not "forbidden")."""
    with store.session() as s:
        row = s.get(ApiTokenRow, token_id)
        if row is None or row.user_name != name:
            raise LookupError(token_id)
        if row.revoked_at is None:
            row.revoked_at = utcnow()
        return _token(row)
