"""Private suites: an agency's held-out prompt sets, kept in the store (migration 0011).

The items live here, in the agency's own database, and nowhere else: not in the package, not in
reports, not in the ledger (which records the digest and counts only). A name stands for one
content digest for good, so every run that names the suite keeps meaning what it meant.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from weighbridge.store.base import Base, SafeText, UTCDateTime, utcnow


class PrivateSuiteRow(Base):
    __tablename__ = "private_suites"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[str] = mapped_column(String(32))
    # items_digest of the items: the suite's content hash in runs and reports
    digest: Mapped[str] = mapped_column(String(64), index=True)
    title: Mapped[str] = mapped_column(SafeText)
    item_count: Mapped[int] = mapped_column(Integer)
    # category id -> item count, in the suite's order
    categories_json: Mapped[str] = mapped_column(SafeText)
    # The items as `suites.private.records_of` writes them (a JSON array)
    items_json: Mapped[str] = mapped_column(SafeText)
    added_by: Mapped[str] = mapped_column(SafeText)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
