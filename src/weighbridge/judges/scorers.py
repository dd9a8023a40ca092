"""Judges as scorers of the evaluation core: a judge reads (request, answer) pairs, a scorer reads
(item, transcript) pairs; this is the one place that turns the second into the first."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from weighbridge.evals.protocols import Scorer
from weighbridge.evals.records import EvalItem, Score, Transcript
from weighbridge.evals.registry import scorers
from weighbridge.judges.base import Judge, judge_batch
from weighbridge.judges.registry import JUDGES


class JudgeScorer:
    """Scores each transcript's last answer against the item's last user request."""

    def __init__(self, judge: Judge) -> None:
        self.judge = judge
        self.name = judge.name
        self.version = judge.version

    def __getattr__(self, attribute: str) -> Any:
        # The judge's own metadata (validation set, model identity) stays readable through the scorer.
        return getattr(self.judge, attribute)

    def score(self, batch: Sequence[tuple[EvalItem, Transcript]]) -> list[Score]:
        return judge_batch(self.judge, [(item.prompt, transcript.answer.text) for item, transcript in batch])


def _scorer_of(make: Callable[[], Judge]) -> Callable[[], Scorer]:
    return lambda: JudgeScorer(make())


for _name, _make in JUDGES.items():
    scorers.register(_name)(_scorer_of(_make))


def as_scorers(judges: Sequence[Judge]) -> list[JudgeScorer]:
    """The judges of a run, in order (the first is the primary), as the scorers the engine calls."""
    return [JudgeScorer(judge) for judge in judges]
