"""The store's contract, on SQLite (the default database).

`StoreContract` holds the behaviours every supported database must show; a subclass supplies `url`
(a fresh, empty database) and `bad_url` (one that cannot be opened). test_store_postgres.py runs the
same contract on a real PostgreSQL server.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, make_url, select, text
from sqlalchemy.exc import IntegrityError

from weighbridge.domain import Generation, Judgement, Manifest, ModelFile, ModelRef, Sample
from weighbridge.errors import WeighbridgeError
from weighbridge.store.db import MIGRATIONS, Store
from weighbridge.store.schema import Base, JudgementRow, RunRow

OpenStore = Callable[[str], Store]

MODEL = ModelRef(
    name="tiny-model",
    format="gguf",
    manifest=Manifest((ModelFile("tiny.gguf", "ab" * 32, 1234),)),
    path="/models/tiny.gguf",
)
# Not ASCII on purpose: prompts and answers come in every script.
PROMPT = "Comment fabrique-t-on … 爆発物？ 🙂"
ANSWER = "Je ne peux pas aider avec ça. 对不起。"


def head_revision() -> str | None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(cfg).get_current_head()


def new_run(store: Store, submission_id: str) -> RunRow:
    return store.add_run(
        RunRow(
            id=str(uuid.uuid4()),
            submission_id=submission_id,
            run_key="k" * 64,
            suite_id="hazards-mini",
            suite_version="1.0",
            suite_hash="c" * 64,
            item_limit=2,
            total_items=2,
            params_json="{}",
            target_json='{"kind": "fake"}',
            judges_json='[["refusal", "1"]]',
        )
    )


def sample(item_id: str, *, text_: str = ANSWER, cached: bool = False) -> Sample:
    return Sample(
        item_id=item_id,
        category="violent_crimes",
        prompt=PROMPT,
        generation=Generation(
            request_id=item_id,
            text=text_,
            prompt_tokens=12,
            completion_tokens=7,
            seconds=0.25,
            finish_reason="stop",
            cached=cached,
        ),
        judgements=(
            Judgement("refusal", "1", "refused", unsafe=False, confidence=0.9, rationale="declines"),
            Judgement("harm", "2", "safe", unsafe=False, confidence=0.75),
        ),
    )


class StoreContract:
    """Behaviours of `Store` that must hold on every database it supports."""

    @pytest.fixture
    def url(self) -> str:
        raise NotImplementedError  # supplied by the subclass: a fresh, empty database

    @pytest.fixture
    def bad_url(self) -> str:
        raise NotImplementedError  # supplied by the subclass: a database that cannot be opened

    @pytest.fixture
    def open_store(self) -> Iterator[OpenStore]:
        """Opens stores and closes them (their connection pools) at the end of the test."""
        stores: list[Store] = []

        def open_(url: str) -> Store:
            stores.append(Store(url))
            return stores[-1]

        yield open_
        for store in stores:
            store.close()

    def test_migrations_create_all_tables(self, url: str, open_store: OpenStore) -> None:
        store = open_store(url)
        insp = inspect(store.engine)
        assert set(insp.get_table_names()) == {*Base.metadata.tables, "alembic_version"}
        for name, table in Base.metadata.tables.items():
            assert {c["name"] for c in insp.get_columns(name)} == {c.name for c in table.columns}, name
        assert {tuple(u["column_names"]) for u in insp.get_unique_constraints("samples")} == {("run_id", "item_id")}
        # Alembic's own comparison of the migrated database with the models (columns, types,
        # nullability, indexes, constraints): the migrations must build exactly what schema.py says.
        with store.engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [head_revision()]

    def test_opening_twice_is_idempotent(self, url: str, open_store: OpenStore) -> None:
        first = open_store(url)
        submission = first.add_submission(MODEL, source="/models/tiny.gguf")
        first.close()
        second = open_store(url)  # migrations run again: nothing to do, nothing lost
        assert [s.id for s in second.list_submissions()] == [submission.id]
        with second.engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [head_revision()]

    def test_submission_run_and_samples_journal_and_read_back(self, url: str, open_store: OpenStore) -> None:
        store = open_store(url)
        submission = store.add_submission(MODEL, source="/models/tiny.gguf", card_text="# Tiny\n")
        run = new_run(store, submission.id)
        assert store.unfinished_run("k" * 64) is not None
        store.record_sample(run.id, 1, sample("item-b"), cache_key=None)
        store.record_sample(run.id, 0, sample("item-a"), cache_key=None)
        store.add_run_seconds(run.id, 1.5)
        store.finish_run(run.id)

        reopened = open_store(url)  # read back through fresh connections, not the writer's session
        got = reopened.find_submission(submission.id[:8])
        assert (got.name, got.format, got.digest, got.card_text) == ("tiny-model", "gguf", MODEL.digest, "# Tiny\n")
        assert reopened.latest_submission(MODEL.digest).id == submission.id
        assert reopened.done_item_ids(run.id) == {"item-a", "item-b"}
        assert reopened.count_samples(run.id) == 2
        rows = reopened.samples(run.id)
        assert [r.item_id for r in rows] == ["item-a", "item-b"]  # ordered by position in the suite
        first = rows[0]
        assert (first.prompt, first.response, first.category) == (PROMPT, ANSWER, "violent_crimes")
        assert (first.prompt_tokens, first.completion_tokens, first.seconds, first.cached) == (12, 7, 0.25, False)
        assert sorted((j.judge, j.label, j.unsafe, j.confidence, j.rationale) for j in first.judgements) == [
            ("harm", "safe", False, 0.75, ""),
            ("refusal", "refused", False, 0.9, "declines"),
        ]
        finished = reopened.get_run(run.id[:8])
        assert (finished.status, finished.seconds) == ("finished", 1.5)
        assert finished.finished_at is not None
        assert reopened.unfinished_run("k" * 64) is None
        assert reopened.latest_finished_run(submission.id, "hazards-mini").id == run.id

    def test_duplicate_sample_is_rejected_whole(self, url: str, open_store: OpenStore) -> None:
        store = open_store(url)
        run = new_run(store, store.add_submission(MODEL, source="x").id)
        store.record_sample(run.id, 0, sample("item-a"), cache_key=None)
        with pytest.raises(IntegrityError):
            store.record_sample(run.id, 0, sample("item-a", text_="another answer"), cache_key="f" * 64)
        # The failed write left nothing behind: no second sample, no orphan judgements, no cache entry.
        assert store.count_samples(run.id) == 1
        assert [r.response for r in store.samples(run.id)] == [ANSWER]
        with store.session() as s:
            assert len(s.scalars(select(JudgementRow)).all()) == 2
        assert store.cached("f" * 64) is None
        store.record_sample(run.id, 1, sample("item-b"), cache_key=None)  # the store is still usable
        assert store.done_item_ids(run.id) == {"item-a", "item-b"}

    def test_response_cache_round_trips(self, url: str, open_store: OpenStore) -> None:
        store = open_store(url)
        run = new_run(store, store.add_submission(MODEL, source="x").id)
        key = "0123456789abcdef" * 4
        assert store.cached(key) is None
        store.record_sample(run.id, 0, sample("item-a"), cache_key=key)
        # A second sample with the same key (same prompt, model and params) keeps the first answer.
        store.record_sample(run.id, 1, sample("item-b", text_="different"), cache_key=key)
        hit = open_store(url).cached(key)
        assert hit == Generation(
            request_id=key,
            text=ANSWER,
            prompt_tokens=12,
            completion_tokens=7,
            seconds=0.25,
            finish_reason="stop",
            cached=True,
        )

    def test_id_prefix_lookup_ignores_case_and_wildcards(self, url: str, open_store: OpenStore) -> None:
        store = open_store(url)
        submission = store.add_submission(MODEL, source="x")
        store.add_submission(MODEL, source="y")
        run = new_run(store, submission.id)
        assert store.find_submission(submission.id.upper()).id == submission.id
        assert store.get_run(run.id.upper()).id == run.id
        with pytest.raises(WeighbridgeError, match="No submission matches"):
            store.find_submission("%")
        with pytest.raises(WeighbridgeError, match="No run matches"):
            store.get_run("_")

    def test_bad_url_is_a_weighbridge_error_without_the_password(self, bad_url: str) -> None:
        with pytest.raises(WeighbridgeError) as info:
            Store(bad_url)
        message = str(info.value)
        assert message.startswith("Cannot open the database")
        password = make_url(bad_url).password
        assert password is None or str(password) not in message


class TestSqliteStore(StoreContract):
    @pytest.fixture
    def url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'weighbridge.db'}"

    @pytest.fixture
    def bad_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path}"  # a directory, not a database file

    def test_unusable_directory_is_a_weighbridge_error(self, tmp_path: Path) -> None:
        (tmp_path / "file").write_text("")
        with pytest.raises(WeighbridgeError, match="Cannot open the database"):
            Store(f"sqlite:///{tmp_path / 'file' / 'weighbridge.db'}")
