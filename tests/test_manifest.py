from __future__ import annotations

import hashlib
import tracemalloc
from pathlib import Path

from weighbridge.intake import manifest as manifest_mod
from weighbridge.intake.manifest import build_manifest, sha256_file


def test_streamed_hash_equals_whole_file_hash(tmp_path: Path) -> None:
    data = bytes(range(256)) * 5000 + b"tail"
    f = tmp_path / "w.bin"
    f.write_bytes(data)
    assert sha256_file(f, chunk_bytes=4096) == hashlib.sha256(data).hexdigest()


def test_hash_memory_stays_bounded_for_large_files(tmp_path: Path) -> None:
    """A 64 MiB file hashes with a few MiB of peak allocation: it is streamed, not read whole."""
    f = tmp_path / "big.bin"
    with f.open("wb") as fh:
        for _ in range(64):
            fh.write(b"\x5a" * (1 << 20))
    tracemalloc.start()
    try:
        digest = sha256_file(f)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * manifest_mod.CHUNK_BYTES
    assert digest == hashlib.sha256(b"\x5a" * (64 << 20)).hexdigest()


def test_manifest_digest_independent_of_location_and_order(tmp_path: Path) -> None:
    a, b = tmp_path / "one", tmp_path / "two"
    a.mkdir()
    b.mkdir()
    for d in (a, b):
        (d / "x.gguf").write_bytes(b"abc")
        (d / "y.json").write_bytes(b"{}")
    m1 = build_manifest([a / "x.gguf", a / "y.json"], root=a)
    m2 = build_manifest([b / "y.json", b / "x.gguf"], root=b)
    assert m1.digest == m2.digest
    (b / "y.json").write_bytes(b"{ }")
    assert build_manifest([b / "y.json", b / "x.gguf"], root=b).digest != m1.digest
