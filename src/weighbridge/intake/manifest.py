"""Streamed fingerprints of model files.

Weights can be tens of GB, so files are hashed in fixed-size chunks and never read whole.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

from weighbridge.domain import Manifest, ModelFile

CHUNK_BYTES = 1 << 20


def sha256_file(path: Path, chunk_bytes: int = CHUNK_BYTES) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def build_manifest(paths: Iterable[Path], root: Path | None = None) -> Manifest:
    """Fingerprint files; paths are recorded relative to `root` (or by file name) so the digest
    does not depend on where the reviewer keeps the weights."""
    files = []
    for path in sorted(paths):
        name = path.relative_to(root).as_posix() if root is not None else path.name
        files.append(ModelFile(path=name, sha256=sha256_file(path), bytes=path.stat().st_size))
    return Manifest(files=tuple(files))


def model_files(root: Path) -> list[Path]:
    """The regular files of a model directory, sorted; symlinks are not followed (inspection reports
    them), so a link cannot pull files from outside the directory into a manifest."""
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def manifest_of(path: Path) -> Manifest:
    """The manifest of one model file (by name) or of a model directory (paths relative to it)."""
    return build_manifest([path]) if path.is_file() else build_manifest(model_files(path), root=path)
