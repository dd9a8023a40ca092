"""Fixtures of the custody tests: a fresh SQLite store, a ciphertext root and a plaintext lease root."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from weighbridge.store.db import Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(f"sqlite:///{tmp_path / 'wb.db'}")
    yield s
    s.close()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "custody"


@pytest.fixture
def tmp_root(tmp_path: Path) -> Path:
    path = tmp_path / "tmp"
    path.mkdir()
    return path
