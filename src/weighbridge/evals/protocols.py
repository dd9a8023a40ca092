"""The evaluation core's interfaces: who answers, who asks, who scores, who remembers.

Synchronous and batched on purpose: the targets weighbridge runs on a CPU (llama.cpp decoding
several sequences in one context, a transformers model on padded batches) are fastest when handed
a batch at once, and an endpoint target keeps its own pool of concurrent requests inside
`generate`. So the run loop stays a plain loop a reader can follow and a `kill -9` can interrupt
at any point without an event loop's half-finished tasks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from weighbridge.domain import ChatRequest, Generation, GenerationParams, ModelRef, Sample
from weighbridge.evals.records import Capability, EvalItem, Score, TargetOptions, Transcript


@runtime_checkable
class Target(Protocol):
    """Something that answers conversations: llama.cpp, transformers, vLLM, an endpoint.

    `describe()` returns the settings that can change an answer (adapter, context size, device,
    ...); it is part of a run's identity, so a run resumed with other settings starts afresh
    instead of mixing. `batch_size` is how many requests the runner should hand over at once.
    """

    name: str
    batch_size: int
    capabilities: frozenset[Capability]

    def describe(self) -> Mapping[str, Any]: ...

    def generate(self, requests: Sequence[ChatRequest]) -> list[Generation]: ...

    def close(self) -> None: ...


class Solver(Protocol):
    """Turns items into transcripts by talking to a target: ask once, wrap in an attack, hold a
    multi-turn conversation, run an agent loop, or change the weights and then ask."""

    name: str

    def solve(self, items: Sequence[EvalItem], target: Target, params: GenerationParams) -> list[Transcript]: ...


@runtime_checkable
class Scorer(Protocol):
    """Reads transcripts in batches and gives one score per item; carries its name and version
    (they are part of a run's identity and of every recorded score)."""

    name: str
    version: str

    def score(self, batch: Sequence[tuple[EvalItem, Transcript]]) -> list[Score]: ...


class Journal(Protocol):
    """Where a run's finished samples are kept the moment they exist, and the response cache.

    The SQL store implements it; the run loop needs nothing else from a database, so a run can be
    driven against any journal (an in-memory one in tests, a remote one on a worker)."""

    def done_item_ids(self, run_id: str) -> set[str]: ...

    def cached(self, key: str) -> Generation | None: ...

    def record_sample(self, run_id: str, seq: int, sample: Sample, cache_key: str | None) -> None: ...

    def add_run_seconds(self, run_id: str, seconds: float) -> None: ...


class TargetKind(Protocol):
    """One way to open models as targets (llama.cpp, transformers, vLLM, an endpoint); the one
    factory asks each registered kind whether it takes a model, in registration order."""

    name: str

    def accepts(self, model: ModelRef) -> bool: ...

    def open(self, model: ModelRef, options: TargetOptions) -> Target: ...
