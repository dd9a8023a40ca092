"""Canonical bytes for anything the ledger hashes or signs.

A hash over JSON only means something if everyone encodes the same value to the same bytes: sorted
keys, no whitespace, UTF-8 (non-ASCII kept as is), no NaN or infinities. Control characters are always
escaped by `json`, so the bytes never contain a raw NUL or newline — which is also what lets a
bundle hold one record per line.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

DIGEST_PREFIX = "sha256:"


def canonical_json(value: Any) -> bytes:
    """The canonical encoding of a JSON value (see the module docstring)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def evidence_digest(evidence: Mapping[str, Any] | bytes) -> str:
    """`sha256:<hex>` of the evidence: raw bytes as given, a mapping through `canonical_json`."""
    data = bytes(evidence) if isinstance(evidence, bytes | bytearray | memoryview) else canonical_json(dict(evidence))
    return DIGEST_PREFIX + sha256_hex(data)
