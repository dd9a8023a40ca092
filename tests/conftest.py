"""Shared fixtures. Tests use the real default model; nothing here mocks a target."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytest_plugins = ["tests.fixtures_postgres", "tests.custody_fixtures"]

REPO = Path(__file__).resolve().parent.parent
WEIGHBRIDGE = [sys.executable, "-m", "weighbridge.cli"]


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own WEIGHBRIDGE_HOME, so no test reads or writes the user's store, and its
    own WEIGHBRIDGE_KEY_DIR (the quick path's custody key lives outside the home), so no test writes
    into the real ~/.config."""
    home = tmp_path / "wbhome"
    monkeypatch.setenv("WEIGHBRIDGE_HOME", str(home))
    monkeypatch.setenv("WEIGHBRIDGE_KEY_DIR", str(tmp_path / "keys-outside"))
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def llama_server(default_model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `python -m llama_cpp.server` serving the default model on loopback."""
    port = free_port()
    # A file, not a pipe: the server logs a lot and would block once a pipe buffer filled up.
    log = (tmp_path_factory.mktemp("server") / "server.log").open("w+")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(default_model_path),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "2048",
            "--model_alias",
            "smollm2",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 60
    try:
        while True:
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"llama_cpp.server exited: {log.read()[-2000:]}")
            try:
                if httpx.get(f"{base}/models", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("llama_cpp.server did not start within 60 s")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()
