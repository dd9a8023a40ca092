"""Tables. Every schema change ships as an Alembic migration in `migrations/versions`."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

# Re-exported: callers and the migrations import the base and column types from here.
from weighbridge.store.base import Base as Base
from weighbridge.store.base import SafeText as SafeText
from weighbridge.store.base import UTCDateTime as UTCDateTime
from weighbridge.store.base import utcnow as utcnow


class SubmissionRow(Base):
    __tablename__ = "submissions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    format: Mapped[str] = mapped_column(String(16))
    digest: Mapped[str] = mapped_column(String(64), index=True)
    source: Mapped[str] = mapped_column(SafeText)  # path or model.yaml the model was read from
    manifest_json: Mapped[str] = mapped_column(SafeText)
    endpoint_json: Mapped[str | None] = mapped_column(SafeText, nullable=True)
    card_text: Mapped[str | None] = mapped_column(SafeText, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    runs: Mapped[list[RunRow]] = relationship(back_populates="submission")


class RunRow(Base):
    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    submission_id: Mapped[str] = mapped_column(ForeignKey("submissions.id"), index=True)
    # Identity of the work: same key and not finished -> the run is resumed, not restarted.
    run_key: Mapped[str] = mapped_column(String(64), index=True)
    suite_id: Mapped[str] = mapped_column(String(64))
    suite_version: Mapped[str] = mapped_column(String(32))
    suite_hash: Mapped[str] = mapped_column(String(64))
    item_limit: Mapped[int | None] = mapped_column(Integer, nullable=True)
    total_items: Mapped[int] = mapped_column(Integer)
    params_json: Mapped[str] = mapped_column(SafeText)
    target_json: Mapped[str] = mapped_column(SafeText)
    judges_json: Mapped[str] = mapped_column(SafeText)
    status: Mapped[str] = mapped_column(String(16), default="running")  # running | finished
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Wall-clock seconds spent across all invocations (a resumed run adds to it).
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    # How items were sampled (adaptive stopping settings); None: every item is asked.
    sampling_json: Mapped[str | None] = mapped_column(SafeText, nullable=True)
    # Where the run was computed (runner.environment): a JSON list, one entry per distinct
    # environment that added samples (a run resumed on another host adds one). None: before 0010.
    environment_json: Mapped[str | None] = mapped_column(SafeText, nullable=True)

    submission: Mapped[SubmissionRow] = relationship(back_populates="runs")
    samples: Mapped[list[SampleRow]] = relationship(back_populates="run", order_by="SampleRow.seq")


class SampleRow(Base):
    __tablename__ = "samples"
    __table_args__ = (UniqueConstraint("run_id", "item_id", name="uq_samples_run_item"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)  # position of the item in the suite
    item_id: Mapped[str] = mapped_column(String(128))
    category: Mapped[str] = mapped_column(String(64))
    prompt: Mapped[str] = mapped_column(SafeText)
    response: Mapped[str] = mapped_column(SafeText)
    prompt_tokens: Mapped[int] = mapped_column(Integer)
    completion_tokens: Mapped[int] = mapped_column(Integer)
    seconds: Mapped[float] = mapped_column(Float)
    finish_reason: Mapped[str] = mapped_column(String(32))
    cached: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    run: Mapped[RunRow] = relationship(back_populates="samples")
    judgements: Mapped[list[JudgementRow]] = relationship(back_populates="sample")


class JudgementRow(Base):
    __tablename__ = "judgements"
    __table_args__ = (UniqueConstraint("sample_id", "judge", name="uq_judgements_sample_judge"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sample_id: Mapped[int] = mapped_column(ForeignKey("samples.id"), index=True)
    judge: Mapped[str] = mapped_column(String(64))
    judge_version: Mapped[str] = mapped_column(String(32))
    label: Mapped[str] = mapped_column(String(32))
    unsafe: Mapped[bool] = mapped_column(Boolean)
    confidence: Mapped[float] = mapped_column(Float)
    rationale: Mapped[str] = mapped_column(SafeText, default="")
    # A judge's graded reading in [0, 1] (harm judge: specificity; llm judge: StrongREJECT score).
    score: Mapped[float | None] = mapped_column(Float, nullable=True)

    sample: Mapped[SampleRow] = relationship(back_populates="judgements")


class ReproductionRow(Base):
    """A sample of a finished run generated again (`weighbridge reproduce`) and how it compared."""

    __tablename__ = "reproductions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), index=True)
    sample_size: Mapped[int] = mapped_column(Integer)
    answers_same: Mapped[int] = mapped_column(Integer)
    verdicts_same: Mapped[int] = mapped_column(Integer)
    # The stored answers judged again: a judge that moved, not the generation.
    rejudged_same: Mapped[int] = mapped_column(Integer)
    environment_json: Mapped[str] = mapped_column(SafeText)
    result_json: Mapped[str] = mapped_column(SafeText)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CacheRow(Base):
    """Responses keyed by (model digest, messages, generation params)."""

    __tablename__ = "response_cache"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    text: Mapped[str] = mapped_column(SafeText)
    prompt_tokens: Mapped[int] = mapped_column(Integer)
    completion_tokens: Mapped[int] = mapped_column(Integer)
    seconds: Mapped[float] = mapped_column(Float)
    finish_reason: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class FindingRow(Base):
    """A finding about a submission (inspection now; evaluation and review later)."""

    __tablename__ = "findings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    submission_id: Mapped[str] = mapped_column(ForeignKey("submissions.id"), index=True)
    source: Mapped[str] = mapped_column(String(32))  # which stage produced it, e.g. "inspection"
    kind: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(SafeText)
    file: Mapped[str | None] = mapped_column(SafeText, nullable=True)
    location: Mapped[str | None] = mapped_column(SafeText, nullable=True)
    evidence: Mapped[str | None] = mapped_column(SafeText, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DocumentRow(Base):
    """A document handed in with a submission (safety documentation, audit logs, evaluations).

    Kept whole and bound by digest, so a reviewer can later show exactly what the lab provided.
    """

    __tablename__ = "documents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    submission_id: Mapped[str] = mapped_column(ForeignKey("submissions.id"), index=True)
    path: Mapped[str] = mapped_column(SafeText)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column("bytes", Integer)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# The other areas' tables live in their own modules on the same Base (`store.base`); importing them
# here keeps Base.metadata complete for whoever imports the schema. They import `store.base`, never
# this module, so these imports close no cycle.
from weighbridge.store import auth_schema as auth_schema  # noqa: E402
from weighbridge.store import custody_schema as custody_schema  # noqa: E402
from weighbridge.store import ledger_schema as ledger_schema  # noqa: E402
from weighbridge.store import notice_schema as notice_schema  # noqa: E402
from weighbridge.store import reference_schema as reference_schema  # noqa: E402
from weighbridge.store import suite_schema as suite_schema  # noqa: E402
from weighbridge.store import workflow_schema as workflow_schema  # noqa: E402
