"""The declarative base and column types that every table module shares.

They live apart from `schema.py` so that the per-area table modules (custody, ledger, notice,
references, suites, workflow) can build on them without importing `schema.py`, which imports
those modules in turn to make `Base.metadata` complete: the table modules depend on this module,
`schema.py` depends on them, and nothing points back.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime, Dialect, Text, TypeDecorator
from sqlalchemy.orm import DeclarativeBase


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps come back timezone-aware (UTC) from every database; SQLite drops the zone."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class SafeText(TypeDecorator[str]):
    """Text that PostgreSQL accepts: it refuses NUL characters, which model output can contain.

    NUL becomes U+FFFD on every database, so SQLite and PostgreSQL store the same thing.
    """

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return value.replace("\x00", "\ufffd") if value is not None else None


class Base(DeclarativeBase):
    pass
