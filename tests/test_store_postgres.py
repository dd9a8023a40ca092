"""The store's contract (see test_store_sqlite.py) on a real PostgreSQL server.

The server comes from the `postgres_server` fixture (tests/fixtures_postgres.py); each test gets a
database of its own on it.
"""

from __future__ import annotations

import uuid

import pytest

from tests.fixtures_postgres import PostgresServer, free_port
from tests.test_store_sqlite import StoreContract
from weighbridge.errors import WeighbridgeError
from weighbridge.store.db import Store

pytestmark = pytest.mark.postgres


class TestPostgresStore(StoreContract):
    @pytest.fixture
    def url(self, postgres_server: PostgresServer) -> str:
        return postgres_server.create_database(f"store_{uuid.uuid4().hex[:12]}")

    @pytest.fixture
    def bad_url(self, postgres_server: PostgresServer) -> str:
        # The server's real user and password, but a port nothing listens on.
        return postgres_server.url("weighbridge", port=free_port())

    def test_wrong_password_is_a_weighbridge_error_without_the_password(self, postgres_server: PostgresServer) -> None:
        wrong = "not-the-" + postgres_server.password
        with pytest.raises(WeighbridgeError) as info:
            Store(postgres_server.url("postgres", password=wrong))
        assert "password authentication failed" in str(info.value)
        assert wrong not in str(info.value)


def test_session_database_is_reachable(postgres_url: str) -> None:
    store = Store(postgres_url)
    try:
        assert store.engine.dialect.name == "postgresql"
        assert store.count_samples("no-such-run") == 0
    finally:
        store.close()
