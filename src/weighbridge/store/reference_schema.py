"""Pinned references: a name bound to a model digest and to how it is asked (migration 0009).

A reference's *results* are ordinary runs of an ordinary submission row (no custody: a reference is
not under review), so the journal, resume and response cache work for references exactly as for
the model under review. This table only pins what the name stands for.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from weighbridge.store.base import Base, SafeText, UTCDateTime, utcnow


class ReferenceRow(Base):
    __tablename__ = "model_references"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    title: Mapped[str] = mapped_column(SafeText)
    # gguf | endpoint | builtin
    kind: Mapped[str] = mapped_column(String(16))
    # A path, a model.yaml, or "builtin:NAME"
    source: Mapped[str] = mapped_column(SafeText)
    digest: Mapped[str] = mapped_column(String(64))
    # "model" (the GGUF's own chat template), a shipped format name, or a .jinja path
    chat_format: Mapped[str] = mapped_column(SafeText)
    submission_id: Mapped[str] = mapped_column(ForeignKey("submissions.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
