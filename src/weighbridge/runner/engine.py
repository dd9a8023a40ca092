"""Execute suite items against a target, journaling each finished sample.

Crash safety comes from the journal, not from the runner's memory: every sample is committed (with
its judgements) the moment it is finished, and a rerun of the same work asks the store which items
are already done. So `kill -9` loses at most the batch in flight, and nothing is ever recorded twice
(the store also enforces one sample per item and run).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from weighbridge.domain import ChatRequest, Generation, GenerationParams, RunStats, Sample
from weighbridge.evals.protocols import Journal, Scorer, Solver, Target
from weighbridge.evals.records import EvalItem
from weighbridge.evals.solvers import PlainSolver
from weighbridge.runner.cache import cache_key


class ProgressSink(Protocol):
    """Where progress goes; the CLI renders it with Rich, tests and the API may ignore it."""

    def start(self, total: int, done: int, description: str) -> None: ...

    def advance(self, n: int = 1) -> None: ...

    def stop(self) -> None: ...


class NoProgress:
    def start(self, total: int, done: int, description: str) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass

    def stop(self) -> None:
        pass


@dataclass(frozen=True)
class RunPlan:
    run_id: str
    model_digest: str
    items: tuple[EvalItem, ...]
    params: GenerationParams
    description: str = "evaluating"


class Stopper(Protocol):
    """Adaptive sampling: told every finished sample, asked before each item whether to skip it."""

    def observe(self, sample: Sample) -> None: ...

    def skip(self, item: EvalItem) -> bool: ...


class CachedTarget:
    """The target behind the journal's response cache: answers already given to the same
    conversation by the same model and settings are read back instead of generated, and the key of
    each answer is kept so the journal fills the cache in the same commit as the sample."""

    def __init__(self, target: Target, journal: Journal, model_digest: str) -> None:
        self.name = target.name
        self.batch_size = target.batch_size
        self.capabilities = target.capabilities
        self._target = target
        self._journal = journal
        self._model_digest = model_digest
        self._described = dict(target.describe())
        self.keys: dict[str, str] = {}  # request id -> cache key of its latest answer

    def describe(self) -> dict[str, Any]:
        return self._described

    def generate(self, requests: Sequence[ChatRequest]) -> list[Generation]:
        keys = [cache_key(self._model_digest, self._described, r) for r in requests]
        cached = [self._journal.cached(k) for k in keys]
        misses = [i for i, answer in enumerate(cached) if answer is None]
        fresh = self._target.generate([requests[i] for i in misses]) if misses else []
        by_index = dict(zip(misses, fresh, strict=True))
        self.keys.update((r.id, k) for r, k in zip(requests, keys, strict=True))
        return [answer if answer is not None else by_index[i] for i, answer in enumerate(cached)]

    def close(self) -> None:
        self._target.close()


def execute(
    journal: Journal,
    plan: RunPlan,
    target: Target,
    scorers: Sequence[Scorer],
    progress: ProgressSink | None = None,
    stopper: Stopper | None = None,
    solver: Solver | None = None,
) -> RunStats:
    """Run the items of `plan` that the journal does not hold yet (and `stopper` does not skip).

    The stopper only sees the samples made here: the caller replays journalled ones into it first,
    so a resumed adaptive run takes the same decisions as an uninterrupted one.
    """
    progress = progress or NoProgress()
    start = time.perf_counter()
    done = journal.done_item_ids(plan.run_id)
    solver = solver or PlainSolver()
    answering = CachedTarget(target, journal, plan.model_digest)
    todo = [(seq, item) for seq, item in enumerate(plan.items) if item.id not in done]
    generated = cache_hits = tokens = skipped = 0
    progress.start(total=len(plan.items), done=len(plan.items) - len(todo), description=plan.description)
    keep: Callable[[EvalItem], bool] = (lambda _: True) if stopper is None else (lambda i: not stopper.skip(i))
    try:
        pending = deque(todo)
        while pending:
            batch: list[tuple[int, EvalItem]] = []
            while pending and len(batch) < max(1, target.batch_size):
                seq, item = pending.popleft()
                if keep(item):
                    batch.append((seq, item))
                else:
                    skipped += 1
                    progress.advance()
            if not batch:
                break
            items = [item for _, item in batch]
            transcripts = solver.solve(items, answering, plan.params)
            scored = [scorer.score(list(zip(items, transcripts, strict=True))) for scorer in scorers]
            verdicts = list(zip(*scored, strict=True)) if scorers else [()] * len(batch)
            for (seq, item), transcript, judgements in zip(batch, transcripts, verdicts, strict=True):
                gen = transcript.answer
                sample = Sample(item.id, item.category, item.prompt, gen, tuple(judgements))
                journal.record_sample(plan.run_id, seq, sample, cache_key=answering.keys.get(item.id))
                if stopper is not None:
                    stopper.observe(sample)
                cache_hits += gen.cached
                generated += not gen.cached
                tokens += gen.completion_tokens
                progress.advance()
    finally:
        progress.stop()
        journal.add_run_seconds(plan.run_id, time.perf_counter() - start)
    return RunStats(
        seconds=time.perf_counter() - start,
        samples=len(done) + len(todo) - skipped,
        tokens_generated=tokens,
        generated=generated,
        cache_hits=cache_hits,
        resumed=len(done),
    )
