"""Recognise a file's format from its bytes, not its name.

A hostile upload can call a pickle `config.json` or a zip `model.safetensors`, so every decision
about how to scan a file starts here, from magic bytes and structure. The extension is only a hint
used when the bytes are ambiguous (a protocol-0 pickle is plain ASCII text).
"""

from __future__ import annotations

import io
import pickletools
import struct
from pathlib import Path
from typing import Final, Literal

from weighbridge.errors import WeighbridgeError

FileFormat = Literal["gguf", "safetensors", "pytorch-zip", "zip", "pickle", "numpy", "json", "text", "unknown"]

GGUF_MAGIC: Final = b"GGUF"
ZIP_MAGICS: Final = (b"PK\x03\x04", b"PK\x05\x06")
NUMPY_MAGIC: Final = b"\x93NUMPY"
PICKLE_PROTO: Final = 0x80
# Extensions under which PyTorch, scikit-learn and friends store pickles.
PICKLE_SUFFIXES: Final = frozenset({".pkl", ".pickle", ".bin", ".pt", ".pth", ".ckpt", ".joblib", ".dat", ".data"})
SNIFF_BYTES: Final = 64 * 1024
# A safetensors header larger than this is refused (the format's own reference limit is 100 MB).
MAX_SAFETENSORS_HEADER: Final = 100_000_000


class MalformedFile(WeighbridgeError):
    """A file whose structure is broken, oversized or inconsistent.

    Parsers raise it with a stable `kind` and a `location` (a byte offset or a key) so the
    orchestrator can turn it into a finding; it is never allowed to escape as a crash.
    """

    def __init__(self, kind: str, problem: str, location: str | None = None) -> None:
        super().__init__(problem)
        self.kind = kind
        self.location = location


def detect_format(path: Path) -> FileFormat:
    """Classify `path` by reading at most its first 64 KiB."""
    with path.open("rb") as fh:
        head = fh.read(SNIFF_BYTES)
    size = path.stat().st_size
    return detect_bytes(head, size, path.suffix.lower(), is_zip=_is_zip_with_pickle(path) if _zip(head) else None)


def detect_bytes(head: bytes, size: int, suffix: str = "", *, is_zip: bool | None = None) -> FileFormat:
    """Classify a file from its first bytes and total size. `is_zip` says whether a zip holds pickles."""
    if head.startswith(GGUF_MAGIC):
        return "gguf"
    if _zip(head):
        return "pytorch-zip" if is_zip else "zip"
    if head.startswith(NUMPY_MAGIC):
        return "numpy"
    if _looks_like_safetensors(head, size):
        return "safetensors"
    if len(head) >= 2 and head[0] == PICKLE_PROTO and head[1] <= pickle_highest_protocol():
        return "pickle"
    if _parses_as_pickle(head) or (suffix in PICKLE_SUFFIXES and head[:1] in _PROTO0_STARTS):
        return "pickle"
    text = _as_text(head)
    if text is not None:
        return "json" if text.lstrip()[:1] in ("{", "[") else "text"
    return "unknown"


def pickle_highest_protocol() -> int:
    import pickle

    return pickle.HIGHEST_PROTOCOL


# Opcodes a protocol 0/1 pickle commonly starts with: GLOBAL, MARK, EMPTY_DICT, EMPTY_LIST, (, INST...
_PROTO0_STARTS: Final = frozenset({b"c", b"(", b"}", b"]", b")", b"i", b"I", b"S", b"V", b"N", b"F", b"L"})


def _zip(head: bytes) -> bool:
    return head[:4] in ZIP_MAGICS


def _is_zip_with_pickle(path: Path) -> bool:
    import zipfile

    try:
        with zipfile.ZipFile(path) as zf:
            return any(n.endswith((".pkl", ".pickle")) for n in zf.namelist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return False


def _looks_like_safetensors(head: bytes, size: int) -> bool:
    if len(head) < 9:
        return False
    (n,) = struct.unpack("<Q", head[:8])
    return 2 <= n <= size - 8 and n <= MAX_SAFETENSORS_HEADER and head[8:9] == b"{"


def _parses_as_pickle(head: bytes) -> bool:
    """True when the whole sniffed chunk is one complete pickle (how protocol-0 text pickles look)."""
    if not head or head[:1] not in _PROTO0_STARTS or len(head) >= SNIFF_BYTES:
        return False
    try:
        ops = list(pickletools.genops(io.BytesIO(head)))
    except Exception:  # any parse failure just means "not a pickle"
        return False
    return len(ops) >= 2 and ops[-1][0].name == "STOP" and ops[-1][2] == len(head) - 1


def _as_text(head: bytes) -> str | None:
    if b"\x00" in head:
        return None
    try:
        return head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut by the sniff window is still text.
        return head[: exc.start].decode("utf-8") if exc.start >= len(head) - 3 else None
