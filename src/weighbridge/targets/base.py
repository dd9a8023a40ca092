"""The target interface: a batch of chat requests in, one generation per request out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from weighbridge.domain import ChatRequest, Generation


class Target(Protocol):
    """Something that answers prompts.

    `describe()` returns the settings that can change an answer (adapter, context size, ...); it is
    part of a run's identity, so a run resumed with other settings starts afresh instead of mixing.
    `batch_size` is how many requests the runner should hand over at once.
    """

    name: str
    batch_size: int

    def describe(self) -> dict[str, Any]: ...

    def generate(self, requests: Sequence[ChatRequest]) -> list[Generation]: ...

    def close(self) -> None: ...
