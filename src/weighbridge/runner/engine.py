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
from typing import Protocol

from weighbridge.domain import (
    ChatMessage,
    ChatRequest,
    Generation,
    GenerationParams,
    RunStats,
    Sample,
    SuiteItem,
)
from weighbridge.judges.base import Judge, judge_batch
from weighbridge.runner.cache import cache_key
from weighbridge.store.db import Store
from weighbridge.targets.base import Target


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
    items: tuple[SuiteItem, ...]
    params: GenerationParams
    description: str = "evaluating"


class Stopper(Protocol):
    """Adaptive sampling: told every finished sample, asked before each item whether to skip it."""

    def observe(self, sample: Sample) -> None: ...

    def skip(self, item: SuiteItem) -> bool: ...


def request_for(item: SuiteItem, params: GenerationParams) -> ChatRequest:
    # No system prompt of our own: the model is reviewed as shipped, with its template's default.
    return ChatRequest(id=item.id, messages=(ChatMessage("user", item.prompt),), params=params)


def execute(
    store: Store,
    plan: RunPlan,
    target: Target,
    judges: Sequence[Judge],
    progress: ProgressSink | None = None,
    stopper: Stopper | None = None,
) -> RunStats:
    """Run the items of `plan` that the journal does not hold yet (and `stopper` does not skip).

    The stopper only sees the samples made here: the caller replays journalled ones into it first,
    so a resumed adaptive run takes the same decisions as an uninterrupted one.
    """
    progress = progress or NoProgress()
    start = time.perf_counter()
    done = store.done_item_ids(plan.run_id)
    described = target.describe()
    todo = [(seq, item) for seq, item in enumerate(plan.items) if item.id not in done]
    generated = cache_hits = tokens = skipped = 0
    progress.start(total=len(plan.items), done=len(plan.items) - len(todo), description=plan.description)
    keep: Callable[[SuiteItem], bool] = (lambda _: True) if stopper is None else (lambda i: not stopper.skip(i))
    try:
        pending = deque(todo)
        while pending:
            batch: list[tuple[int, SuiteItem]] = []
            while pending and len(batch) < max(1, target.batch_size):
                seq, item = pending.popleft()
                if keep(item):
                    batch.append((seq, item))
                else:
                    skipped += 1
                    progress.advance()
            if not batch:
                break
            requests = [request_for(item, plan.params) for _, item in batch]
            keys = [cache_key(plan.model_digest, described, r) for r in requests]
            cached = [store.cached(k) for k in keys]
            misses = [i for i, a in enumerate(cached) if a is None]
            fresh = dict(zip(misses, target.generate([requests[i] for i in misses]) if misses else [], strict=True))
            answers: list[Generation] = [c if c is not None else fresh[i] for i, c in enumerate(cached)]
            asked = [(item.prompt, gen.text) for (_, item), gen in zip(batch, answers, strict=True)]
            verdicts = list(zip(*(judge_batch(j, asked) for j in judges), strict=True)) if judges else []
            for (seq, item), key, gen, judgements in zip(
                batch, keys, answers, verdicts or [()] * len(batch), strict=True
            ):
                sample = Sample(item.id, item.category, item.prompt, gen, judgements)
                store.record_sample(plan.run_id, seq, sample, cache_key=key)
                if stopper is not None:
                    stopper.observe(sample)
                cache_hits += gen.cached
                generated += not gen.cached
                tokens += gen.completion_tokens
                progress.advance()
    finally:
        progress.stop()
        store.add_run_seconds(plan.run_id, time.perf_counter() - start)
    return RunStats(
        seconds=time.perf_counter() - start,
        samples=len(done) + len(todo) - skipped,
        tokens_generated=tokens,
        generated=generated,
        cache_hits=cache_hits,
        resumed=len(done),
    )
