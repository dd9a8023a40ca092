"""The store: where submissions, runs, samples, judgements and cached responses live.

SQLite by default (one file, nothing to set up); any SQLAlchemy URL (PostgreSQL for teams) works the
same. Opening a store brings its schema up to date through Alembic, so an old database file is
migrated rather than rejected.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, delete, event, func, make_url, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from weighbridge.domain import Finding, Generation, ModelRef, Sample
from weighbridge.errors import WeighbridgeError
from weighbridge.store.schema import (
    CacheRow,
    DocumentRow,
    FindingRow,
    JudgementRow,
    ReproductionRow,
    RunRow,
    SampleRow,
    SubmissionRow,
    utcnow,
)

MIGRATIONS = Path(__file__).parent / "migrations"


def default_home() -> Path:
    return Path(os.environ.get("WEIGHBRIDGE_HOME", Path.home() / ".weighbridge"))


def default_url() -> str:
    """`WEIGHBRIDGE_DB` if set, else a SQLite file under `WEIGHBRIDGE_HOME` (~/.weighbridge)."""
    return os.environ.get("WEIGHBRIDGE_DB") or f"sqlite:///{default_home() / 'weighbridge.db'}"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL keeps readers unblocked while a run journals; with synchronous=NORMAL a committed sample
    # survives a killed process (it would not survive a power cut, which is an acceptable trade).
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def _engine(url: str) -> Engine:
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if str(path) not in ("", ":memory:"):
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


# Alembic's migration context is process-global: two threads migrating at once corrupt it.
_MIGRATE_LOCK = threading.Lock()
# Any constant works; it only has to be the same in every weighbridge process.
_PG_MIGRATION_LOCK_ID = 0x77B1D6E


def migrate(engine: Engine) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with _MIGRATE_LOCK, engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            # Serialise first-time schema creation across processes opening the same database.
            conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _PG_MIGRATION_LOCK_ID})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


class Store:
    """Repository over the database. Each write is its own transaction, so a killed process loses
    at most the sample it was generating."""

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            self.engine = _engine(url)
        except (SQLAlchemyError, OSError) as exc:
            raise _open_error(url, exc) from exc
        try:
            migrate(self.engine)
        except (SQLAlchemyError, OSError) as exc:
            self.engine.dispose()
            raise _open_error(url, exc) from exc
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_: object) -> None:
        # `with Store(url) as store:` closes the connection pool on every exit, error or not.
        self.close()

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions.begin() as s:
            yield s

    # -- submissions -------------------------------------------------------------------------
    def add_submission(self, model: ModelRef, source: str, card_text: str | None = None) -> SubmissionRow:
        row = SubmissionRow(
            id=str(uuid.uuid4()),
            name=model.name[:255],
            format=model.format,
            digest=model.digest,
            source=source,
            manifest_json=json.dumps([asdict(f) for f in model.manifest.files]),
            endpoint_json=json.dumps(asdict(model.endpoint)) if model.endpoint else None,
            card_text=card_text,
        )
        with self.session() as s:
            s.add(row)
        return row

    def latest_submission(self, digest: str) -> SubmissionRow | None:
        with self.session() as s:
            return s.scalars(
                select(SubmissionRow).where(SubmissionRow.digest == digest).order_by(SubmissionRow.created_at.desc())
            ).first()

    def get_submission(self, submission_id: str) -> SubmissionRow | None:
        with self.session() as s:
            return s.get(SubmissionRow, submission_id)

    def find_submission(self, prefix: str) -> SubmissionRow:
        """A submission by id or unambiguous id prefix (as git does with hashes)."""
        with self.session() as s:
            # Ids are lowercase uuids; match the prefix literally and whatever its case on every database
            # (SQLite's LIKE ignores ASCII case, PostgreSQL's does not; '%' and '_' are wildcards to both).
            match = SubmissionRow.id.startswith(prefix.lower(), autoescape=True)
            rows = s.scalars(select(SubmissionRow).where(match)).all()
        if len(rows) != 1:
            what = "No submission" if not rows else f"{len(rows)} submissions"
            raise WeighbridgeError(f"{what} matches '{prefix}'", "Run `weighbridge submissions` to list them")
        return rows[0]

    def list_submissions(self) -> Sequence[SubmissionRow]:
        with self.session() as s:
            return s.scalars(select(SubmissionRow).order_by(SubmissionRow.created_at)).all()

    def add_findings(self, submission_id: str, source: str, findings: Sequence[Finding]) -> None:
        with self.session() as s:
            s.add_all(
                FindingRow(
                    submission_id=submission_id,
                    source=source,
                    kind=f.kind[:64],
                    severity=f.severity,
                    message=f.message,
                    file=f.file,
                    location=f.location,
                    evidence=f.evidence,
                )
                for f in findings
            )

    def add_documents(self, submission_id: str, documents: Sequence[tuple[str, bytes]]) -> None:
        with self.session() as s:
            s.add_all(
                DocumentRow(
                    submission_id=submission_id,
                    path=path,
                    sha256=hashlib.sha256(content).hexdigest(),
                    size=len(content),
                    content=content,
                )
                for path, content in documents
            )

    def documents(self, submission_id: str) -> list[tuple[str, str, int]]:
        """(path, sha256, bytes) of each document handed in with the submission."""
        with self.session() as s:
            query = select(DocumentRow).where(DocumentRow.submission_id == submission_id).order_by(DocumentRow.id)
            return [(d.path, d.sha256, d.size) for d in s.scalars(query)]

    def remove_submission(self, submission_id: str) -> None:
        """Undo a submission whose intake failed before it finished (nothing else refers to it yet)."""
        with self.session() as s:
            s.execute(delete(DocumentRow).where(DocumentRow.submission_id == submission_id))
            s.execute(delete(FindingRow).where(FindingRow.submission_id == submission_id))
            s.execute(delete(SubmissionRow).where(SubmissionRow.id == submission_id))

    def findings(self, submission_id: str) -> list[Finding]:
        with self.session() as s:
            rows = s.scalars(
                select(FindingRow).where(FindingRow.submission_id == submission_id).order_by(FindingRow.id)
            )
            return [
                Finding(r.kind, r.severity, r.message, r.file, r.location, r.evidence)  # type: ignore[arg-type]
                for r in rows
            ]

    # -- runs ----------------------------------------------------------------------------------
    def unfinished_run(self, run_key: str) -> RunRow | None:
        with self.session() as s:
            return s.scalars(
                select(RunRow)
                .where(RunRow.run_key == run_key, RunRow.status == "running")
                .order_by(RunRow.started_at.desc())
            ).first()

    def add_run(self, row: RunRow) -> RunRow:
        with self.session() as s:
            s.add(row)
        return row

    def get_run(self, prefix: str) -> RunRow:
        with self.session() as s:
            match = RunRow.id.startswith(prefix.lower(), autoescape=True)  # as in find_submission
            rows = s.scalars(select(RunRow).where(match)).all()
        if len(rows) != 1:
            what = "No run" if not rows else f"{len(rows)} runs"
            raise WeighbridgeError(f"{what} matches '{prefix}'", "Run `weighbridge runs` to list them")
        return rows[0]

    def latest_finished_run(self, submission_id: str, suite_id: str) -> RunRow | None:
        with self.session() as s:
            return s.scalars(
                select(RunRow)
                .where(RunRow.submission_id == submission_id, RunRow.suite_id == suite_id, RunRow.status == "finished")
                .order_by(RunRow.finished_at.desc())
            ).first()

    def list_runs(self) -> Sequence[RunRow]:
        with self.session() as s:
            return s.scalars(select(RunRow).order_by(RunRow.started_at)).all()

    def finish_run(self, run_id: str) -> None:
        with self.session() as s:
            run = s.get_one(RunRow, run_id)
            run.status = "finished"
            run.finished_at = utcnow()

    def note_environment(self, run_id: str, environment: dict[str, Any]) -> None:
        """Add `environment` to the run's list unless an equal one is there already."""
        with self.session() as s:
            run = s.get_one(RunRow, run_id)
            seen = json.loads(run.environment_json) if run.environment_json else []
            if environment not in seen:
                run.environment_json = json.dumps([*seen, environment], sort_keys=True)

    def add_reproduction(self, row: ReproductionRow) -> None:
        with self.session() as s:
            s.add(row)

    def reproductions(self, run_id: str) -> list[ReproductionRow]:
        with self.session() as s:
            return list(
                s.scalars(
                    select(ReproductionRow)
                    .where(ReproductionRow.run_id == run_id)
                    .order_by(ReproductionRow.created_at, ReproductionRow.id)
                )
            )

    def add_run_seconds(self, run_id: str, seconds: float) -> None:
        with self.session() as s:
            s.get_one(RunRow, run_id).seconds += seconds

    def done_item_ids(self, run_id: str) -> set[str]:
        with self.session() as s:
            return set(s.scalars(select(SampleRow.item_id).where(SampleRow.run_id == run_id)))

    def count_samples(self, run_id: str) -> int:
        with self.session() as s:
            return s.scalar(select(func.count()).select_from(SampleRow).where(SampleRow.run_id == run_id)) or 0

    # -- samples -----------------------------------------------------------------------------
    def record_sample(self, run_id: str, seq: int, sample: Sample, cache_key: str | None) -> None:
        """Journal one finished sample with its judgements (and fill the cache) atomically."""
        g = sample.generation
        with self.session() as s:
            row = SampleRow(
                run_id=run_id,
                seq=seq,
                item_id=sample.item_id,
                category=sample.category,
                prompt=sample.prompt,
                response=g.text,
                prompt_tokens=g.prompt_tokens,
                completion_tokens=g.completion_tokens,
                seconds=g.seconds,
                finish_reason=g.finish_reason[:32],
                cached=g.cached,
            )
            row.judgements = [
                JudgementRow(
                    judge=j.judge,
                    judge_version=j.judge_version,
                    label=j.label,
                    unsafe=j.unsafe,
                    confidence=j.confidence,
                    rationale=j.rationale,
                    score=j.score,
                )
                for j in sample.judgements
            ]
            s.add(row)
            if cache_key is not None and not g.cached:
                # Another writer may have cached the same key meanwhile: keep the first answer.
                s.execute(
                    _insert_ignore(s, CacheRow).values(
                        key=cache_key,
                        text=g.text,
                        prompt_tokens=g.prompt_tokens,
                        completion_tokens=g.completion_tokens,
                        seconds=g.seconds,
                        finish_reason=g.finish_reason[:32],
                        created_at=utcnow(),
                    )
                )

    def samples(self, run_id: str) -> list[SampleRow]:
        with self.session() as s:
            rows = s.scalars(select(SampleRow).where(SampleRow.run_id == run_id).order_by(SampleRow.seq)).all()
            for r in rows:
                _ = r.judgements  # load before the session closes
            return list(rows)

    # -- response cache ----------------------------------------------------------------------
    def cached(self, key: str) -> Generation | None:
        with self.session() as s:
            row = s.get(CacheRow, key)
            if row is None:
                return None
            return Generation(
                request_id=key,
                text=row.text,
                prompt_tokens=row.prompt_tokens,
                completion_tokens=row.completion_tokens,
                seconds=row.seconds,
                finish_reason=row.finish_reason,
                cached=True,
            )


def _insert_ignore(session: Session, table: type[CacheRow]) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING in the dialect at hand (SQLite or PostgreSQL)."""
    if session.get_bind().dialect.name == "postgresql":
        return pg_insert(table).on_conflict_do_nothing()
    return sqlite_insert(table).on_conflict_do_nothing()


def _open_error(url: str, exc: Exception) -> WeighbridgeError:
    detail = " ".join(str(getattr(exc, "orig", None) or exc).split())  # drivers' messages span lines
    return WeighbridgeError(
        f"Cannot open the database {_redact(url)}: {detail}",
        "Check --db / WEIGHBRIDGE_DB (e.g. sqlite:///path/weighbridge.db or postgresql+psycopg://user@host/db)",
    )


def _redact(url: str) -> str:
    """Hide a password in a database URL before it reaches a terminal or a log."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url
