"""Writing notices and revocation lists to disk, atomically (a reader never sees half a file)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from weighbridge.notice.dsse import Envelope
from weighbridge.notice.statement import Statement

__all__ = ["notice_filename", "write_envelope", "write_notice"]


def notice_filename(notice_id: str) -> str:
    return f"notice-{notice_id}.dsse.json"


def write_notice(envelope: Envelope, directory: Path) -> Path:
    """Write a signed notice as `notice-<id>.dsse.json` in `directory`; returns its path."""
    notice_id = Statement.from_payload(envelope.payload).content().notice_id
    return write_envelope(envelope, directory / notice_filename(notice_id))


def write_envelope(envelope: Envelope, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(envelope.to_bytes())
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
