"""Shared fixtures. Tests use the real default model; nothing here mocks a target."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest_plugins = ["tests.fixtures_postgres"]

REPO = Path(__file__).resolve().parent.parent
WEIGHBRIDGE = [sys.executable, "-m", "weighbridge.cli"]


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own WEIGHBRIDGE_HOME, so no test reads or writes the user's store."""
    home = tmp_path / "wbhome"
    monkeypatch.setenv("WEIGHBRIDGE_HOME", str(home))
    monkeypatch.delenv("WEIGHBRIDGE_DB", raising=False)
    return home


@pytest.fixture(scope="session")
def default_model_path() -> Path:
    from weighbridge.intake.resolve import default_model_path as locate

    return locate()


@pytest.fixture(scope="session")
def llama_target(default_model_path: Path) -> Iterator[object]:
    """One loaded copy of the default model for the whole session (loading is cheap, memory is not)."""
    from weighbridge.targets.llamacpp import LlamaCppTarget

    target = LlamaCppTarget(default_model_path, n_threads=os.cpu_count() or 2)
    yield target
    target.close()
