"""The database refuses to change ledger rows — on SQLite and on a real PostgreSQL server — and
appends from many writers at once still make one gapless chain."""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError

from tests.fixtures_postgres import PostgresServer
from weighbridge.errors import WeighbridgeError
from weighbridge.ledger.signing import KeySigner
from weighbridge.services import ledger
from weighbridge.store.db import Store

ORG = KeySigner.generate()
ALICE = KeySigner.generate()

TAMPERING = [
    "UPDATE ledger_entries SET actor = 'mallory' WHERE seq = 1",
    "UPDATE ledger_entries SET evidence_json = NULL",
    "DELETE FROM ledger_entries WHERE seq = 2",
    "DELETE FROM ledger_entries",
    "UPDATE ledger_checkpoints SET root = '00'",
    "DELETE FROM ledger_checkpoints",
    "UPDATE ledger_keys SET actor = 'mallory'",
    "DELETE FROM ledger_keys",
]


def filled(store: Store) -> Store:
    for i in range(3):
        ledger.append(store, ALICE, "alice", "act", f"s{i}", {"i": i}, checkpoint_signer=ORG, checkpoint_every=2)
    return store


def assert_append_only(store: Store, statements: list[str]) -> None:
    before = ledger.read_entries(store), ledger.read_checkpoints(store), ledger.ledger_keys(store)
    for statement in statements:
        with pytest.raises(DBAPIError, match="append-only"), store.session() as s:
            s.execute(text(statement))
    assert (ledger.read_entries(store), ledger.read_checkpoints(store), ledger.ledger_keys(store)) == before
    assert ledger.verify_store(store).ok
    # Appending still works after the refused statements.
    assert ledger.append(store, ALICE, "alice", "act", "after", {}).seq == 4


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    store = Store(f"sqlite:///{tmp_path / 'ledger.db'}")
    yield filled(store)
    store.close()


def test_sqlite_refuses_updates_and_deletes_of_ledger_rows(sqlite_store: Store) -> None:
    assert_append_only(sqlite_store, TAMPERING)


@pytest.fixture
def pg_store(postgres_server: PostgresServer) -> Iterator[Store]:
    store = Store(postgres_server.create_database(f"ledger_{uuid.uuid4().hex[:12]}"))
    yield filled(store)
    store.close()


@pytest.mark.postgres
def test_postgres_refuses_updates_deletes_and_truncate_of_ledger_rows(pg_store: Store) -> None:
    assert_append_only(
        pg_store, [*TAMPERING, "TRUNCATE ledger_entries CASCADE", "TRUNCATE ledger_checkpoints, ledger_keys CASCADE"]
    )


@pytest.mark.postgres
def test_postgres_concurrent_appends_keep_one_gapless_chain(pg_store: Store) -> None:
    errors: list[BaseException] = []

    def work(n: int) -> None:
        signer = KeySigner.generate()
        try:
            for j in range(10):
                ledger.append(
                    pg_store, signer, f"user{n}", "act", f"{n}-{j}", {"j": j}, checkpoint_signer=ORG, checkpoint_every=7
                )
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert [e.seq for e in ledger.read_entries(pg_store)] == list(range(1, 44))
    assert [cp.tree_size for cp in ledger.read_checkpoints(pg_store)] == [2, 7, 14, 21, 28, 35, 42]
    assert ledger.verify_store(pg_store, trusted_keys=[ORG.key_id]).ok


def test_a_writer_holding_the_sqlite_lock_gives_a_clear_error(
    sqlite_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ledger, "_WAITED_S", 0.05)
    sqlite_store.engine.dispose()  # new connections wait 0.2 s for a lock instead of 10 s
    event.listen(sqlite_store.engine, "connect", lambda conn, _: conn.execute("PRAGMA busy_timeout=200"))
    blocker = sqlite3.connect(tmp_path / "ledger.db", isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")
        with pytest.raises(WeighbridgeError, match="stayed locked by another writer"):
            ledger.append(sqlite_store, ALICE, "alice", "act", "blocked", {})
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert ledger.append(sqlite_store, ALICE, "alice", "act", "after", {}).seq == 4
