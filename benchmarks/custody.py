"""Manifest hashing vs `sha256sum`, and custody encryption/decryption throughput, on one large file.

A file of random bytes (default 1 GiB) is written to a temporary directory. `sha256_file` (what the
manifest uses) and `sha256sum` hash it in alternating order for a few rounds, so page-cache and
machine noise hit both alike; throughput is total bytes over total time. Both read the file from the
page cache after the first pass, so this compares hashing loops, not disks.

Then the file is encrypted with the custody format (`encrypt_stream`, 4 MiB chunks, file to file, as
`CustodyVault.deposit` does minus its fsync) and decrypted back to a file (as `materialize` does).

Usage: .venv/bin/python benchmarks/custody.py [--size-mb 1024] [--rounds 3] [--sweep]
Prints `manifest/sha256sum throughput ratio: X.XX` (goal >= 0.9), `encrypt: N MB/s`, `decrypt: N MB/s`.
With --sweep, also the ratio for other `sha256_file` chunk sizes (to choose CHUNK_BYTES).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from weighbridge.intake import manifest
from weighbridge.intake.custody import DEFAULT_CHUNK_BYTES, decrypt_stream, encrypt_stream, new_data_key
from weighbridge.intake.manifest import sha256_file

MB = 1_000_000


def write_random(path: Path, size: int) -> None:
    piece = 16 << 20
    with path.open("wb") as fh:
        left = size
        while left:
            n = min(piece, left)
            fh.write(os.urandom(n))
            left -= n


def timed(fn: Callable[[], str]) -> tuple[float, str]:
    start = time.perf_counter()
    digest = fn()
    return time.perf_counter() - start, digest


def sha256sum(path: Path) -> str:
    out = subprocess.run(["sha256sum", str(path)], check=True, capture_output=True, text=True).stdout
    return out.split()[0]


def compare(path: Path, rounds: int, chunk_bytes: int) -> tuple[float, float, float]:
    """(manifest MB/s, sha256sum MB/s, ratio), alternating which one goes first each round."""
    size = path.stat().st_size
    ours = theirs = 0.0
    for r in range(rounds):
        order = [("ours", lambda: sha256_file(path, chunk_bytes)), ("theirs", lambda: sha256sum(path))]
        if r % 2:
            order.reverse()
        digests = set()
        for name, fn in order:
            seconds, digest = timed(fn)
            digests.add(digest)
            if name == "ours":
                ours += seconds
            else:
                theirs += seconds
        assert len(digests) == 1, f"digests differ: {digests}"
    ours_mbs, theirs_mbs = rounds * size / ours / MB, rounds * size / theirs / MB
    return ours_mbs, theirs_mbs, ours_mbs / theirs_mbs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="size of the test file in MiB")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sweep", action="store_true", help="also try other sha256_file chunk sizes")
    parser.add_argument("--dir", type=Path, default=None, help="where to put the test files (default: TMPDIR)")
    args = parser.parse_args()
    if shutil.which("sha256sum") is None:
        raise SystemExit("sha256sum is not installed")

    with tempfile.TemporaryDirectory(prefix="wb-bench-", dir=args.dir) as tmp:
        plain = Path(tmp) / "plain.bin"
        size = args.size_mb << 20
        write_random(plain, size)
        sha256sum(plain)  # warm the page cache for both sides
        print(f"file: {size / MB:.0f} MB of random bytes in {tmp}")

        ours, theirs, ratio = compare(plain, args.rounds, manifest.CHUNK_BYTES)
        print(f"sha256_file (CHUNK_BYTES={manifest.CHUNK_BYTES >> 10} KiB): {ours:.0f} MB/s")
        print(f"sha256sum: {theirs:.0f} MB/s")
        if args.sweep:
            for chunk in (64 << 10, 128 << 10, 256 << 10, 1 << 20, 4 << 20, 16 << 20):
                o, t, r = compare(plain, args.rounds, chunk)
                print(f"  chunk {chunk >> 10:>6} KiB: sha256_file {o:.0f} MB/s, sha256sum {t:.0f} MB/s, ratio {r:.2f}")

        key = new_data_key()
        blob = Path(tmp) / "plain.wbc"
        back = Path(tmp) / "back.bin"
        enc = dec = 0.0
        for _ in range(args.rounds):
            blob.unlink(missing_ok=True)
            back.unlink(missing_ok=True)
            start = time.perf_counter()
            with plain.open("rb") as src, blob.open("wb") as dst:
                sealed = encrypt_stream(src, dst, key, context=b"bench", chunk_bytes=DEFAULT_CHUNK_BYTES)
            enc += time.perf_counter() - start
            start = time.perf_counter()
            with blob.open("rb") as src, back.open("wb") as dst:
                opened = decrypt_stream(src, dst, key, context=b"bench")
            dec += time.perf_counter() - start
            assert opened.plaintext_sha256 == sealed.plaintext_sha256
        print(f"manifest/sha256sum throughput ratio: {ratio:.2f}")
        print(f"encrypt: {args.rounds * size / enc / MB:.0f} MB/s")
        print(f"decrypt: {args.rounds * size / dec / MB:.0f} MB/s")


if __name__ == "__main__":
    main()
