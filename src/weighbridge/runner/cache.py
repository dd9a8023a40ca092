"""Response-cache keys.

A key covers everything that determines a greedy answer: the exact model (manifest digest), the
target's settings (adapter, chat template override, stop strings — `Target.describe()`), the full
conversation and the generation parameters. Change any of them and the cache misses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from weighbridge.domain import ChatRequest, canonical_json, sha256_text


def cache_key(model_digest: str, target: Mapping[str, Any], request: ChatRequest) -> str:
    return sha256_text(
        canonical_json(
            {
                "model": model_digest,
                "target": dict(target),
                "messages": [asdict(m) for m in request.messages],
                "params": asdict(request.params),
            }
        )
    )
