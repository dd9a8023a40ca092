"""Labelled rows whose text stays in the wheel it came from.

pyrit's human-scored "objective achieved" sets pair harmful requests with real model answers, and
about half of those answers comply — some with working exploit code or synthesis details. Shipping
them in this repository would redistribute that content, so the validation set stores only a
*pointer* per row (wheel, member, data row, and a digest of the text) plus our id, label, category
and split. The text is read from the cached wheel when the set is loaded, and the digest proves it
is the text the label was given to.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import zipfile
from functools import cache
from pathlib import Path

from weighbridge.errors import WeighbridgeError

#: The wheels a pointer row may name, with their sha256 (the file a row was labelled against).
WHEELS: dict[str, str] = {
    "pyrit-1.1.0-py3-none-any.whl": "84581036bace7ff2aa92712e1e3f472a3a3bccc77567d5fbe642540c0ba20b0a",
}
_PIP = {"pyrit-1.1.0-py3-none-any.whl": "pyrit==1.1.0"}


def wheel_dir() -> Path:
    """Where downloaded wheels are cached: ``$WEIGHBRIDGE_WHEELS`` or ``~/.cache/weighbridge/wheels``."""
    env = os.environ.get("WEIGHBRIDGE_WHEELS")
    return Path(env) if env else Path.home() / ".cache" / "weighbridge" / "wheels"


def text_digest(prompt: str, response: str) -> str:
    """The digest a pointer row records: sha256 of ``prompt + "\\0" + response``."""
    return hashlib.sha256(f"{prompt}\0{response}".encode()).hexdigest()


def read_csv_rows(text: str) -> list[dict[str, str]]:
    """Rows of a pyrit scorer-eval CSV, whose leading ``#`` lines are a header, not data.

    Only *leading* comment lines are skipped: ``pandas.read_csv(comment="#")`` would also cut every
    Markdown heading inside a response.
    """
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if not line.startswith("#")), len(lines))
    return list(csv.DictReader(io.StringIO("".join(lines[start:]))))


def _missing(wheel: str, why: str) -> WeighbridgeError:
    return WeighbridgeError(
        f"The harm validation set reads its pyrit rows from {wheel_dir() / wheel}, which {why}",
        f"Run: pip download --no-deps {_PIP.get(wheel, wheel)} -d {wheel_dir()}  (or scripts/setup.sh)",
    )


@cache
def wheel_member(wheel: str, member: str) -> str:
    """The text of `member` inside the cached `wheel`, after checking the wheel's sha256."""
    if wheel not in WHEELS:
        raise WeighbridgeError(f"Validation rows name an unknown wheel {wheel!r}", f"Known: {', '.join(WHEELS)}")
    path = wheel_dir() / wheel
    if not path.is_file():
        raise _missing(wheel, "is not there")
    if hashlib.sha256(path.read_bytes()).hexdigest() != WHEELS[wheel]:
        raise _missing(wheel, "is not the file the rows were labelled against (sha256 differs)")
    with zipfile.ZipFile(path) as archive:
        try:
            return archive.read(member).decode("utf-8")
        except KeyError:
            raise _missing(wheel, f"has no member {member}") from None


def pointed_text(wheel: str, member: str, row: int, digest: str) -> tuple[str, str]:
    """(prompt, response) of 1-based data row `row` of a pyrit CSV, checked against `digest`."""
    rows = read_csv_rows(wheel_member(wheel, member))
    if not 1 <= row <= len(rows):
        raise _missing(wheel, f"has no data row {row} in {member}")
    prompt, response = rows[row - 1]["objective"], rows[row - 1]["assistant_response"]
    if text_digest(prompt, response) != digest:
        raise _missing(wheel, f"has different text in {member} data row {row}")
    return prompt, response
