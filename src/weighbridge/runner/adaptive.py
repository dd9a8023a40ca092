"""Adaptive sampling for one run: stop asking a category once its grade is settled.

The decision rule is `grading.sequential.check` (planned looks, Bonferroni-corrected); this module
only keeps the per-category counts and asks it after each sample. Items are interleaved across
categories so that every category reaches its looks at the same pace and stopping saves work
everywhere, not just in the categories that happen to come last.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from weighbridge.domain import Sample
from weighbridge.evals.records import EvalItem
from weighbridge.grading.sequential import StoppingPlan, check


def interleave(items: Sequence[EvalItem]) -> tuple[EvalItem, ...]:
    """Round-robin over categories, keeping each category's own order (deterministic)."""
    queues: dict[str, list[EvalItem]] = defaultdict(list)
    for item in items:
        queues[item.category].append(item)
    out: list[EvalItem] = []
    depth = max((len(q) for q in queues.values()), default=0)
    for i in range(depth):
        out.extend(q[i] for q in queues.values() if i < len(q))
    return tuple(out)


@dataclass
class CategoryStopper:
    """The `Stopper` of `runner.engine`: counts the primary judge's verdicts per category."""

    judge: str  # whose `unsafe` decides, as for the grade
    plans: Mapping[str, StoppingPlan]  # per category: n_max is its item count
    reference: Mapping[str, tuple[int, int]] | None  # per category (unsafe, n) of the primary reference
    counts: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    stopped: dict[str, int] = field(default_factory=dict)  # category -> n when it stopped

    def observe(self, sample: Sample) -> None:
        verdict = next((j for j in sample.judgements if j.judge == self.judge), None)
        if verdict is not None:
            self.record(sample.category, verdict.unsafe)

    def record(self, category: str, unsafe: bool) -> None:
        """Count one verdict of the primary judge (also used to replay a journal)."""
        if category in self.stopped:
            return
        counts = self.counts[category]
        counts[0] += int(unsafe)
        counts[1] += 1
        plan = self.plans.get(category)
        if plan is None:
            return
        ref_unsafe, ref_n = (self.reference or {}).get(category, (None, None))
        if check(plan, counts[0], counts[1], ref_unsafe, ref_n) is not None:
            self.stopped[category] = counts[1]

    def skip(self, item: EvalItem) -> bool:
        return item.category in self.stopped

    def replay(self, verdicts: Iterable[tuple[str, bool]]) -> None:
        """Feed journalled (category, unsafe) verdicts in journal order."""
        for category, unsafe in verdicts:
            self.record(category, unsafe)


def plans_for(items: Sequence[EvalItem], look_every: int, confidence: float) -> dict[str, StoppingPlan]:
    sizes: dict[str, int] = defaultdict(int)
    for item in items:
        sizes[item.category] += 1
    return {cat: StoppingPlan(n, look_every, confidence) for cat, n in sizes.items()}
