"""The judge interface: a response in, a labelled verdict out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from weighbridge.domain import Judgement
from weighbridge.evals.protocols import Scorer


@runtime_checkable
class Judge(Protocol):
    """Turns (prompt, response) into a `Judgement`.

    Judges are pure with respect to their inputs: the same prompt and response always give the same
    judgement, which is what makes cached and resumed runs comparable with fresh ones.
    """

    name: str
    version: str
    # The labelled set (judges/validation/NAME.jsonl) its agreement is measured on, and which of
    # that set's labels counts as the positive class.
    validation_set: str
    positive_label: str

    def judge(self, prompt: str, response: str) -> Judgement: ...


def judge_batch(judge: Judge, pairs: Sequence[tuple[str, str]]) -> list[Judgement]:
    """Judgements for many pairs: in batched passes when the judge has `judge_many` (a model reads
    a batch much faster than one pair at a time), else one by one."""
    many = getattr(judge, "judge_many", None)
    if many is not None:
        return list(many(pairs))
    return [judge.judge(prompt, response) for prompt, response in pairs]


def judge_identity(judge: Judge | Scorer) -> list[Any]:
    """How a run records a judge (`judges_json`, the run key, `run.start`): its name and version,
    and for a judge that grades through a judge model (the llm judge) that model's identity too —
    its verdicts are the model's, so two judge models are two judges, never one run resumed with
    the other. Judges without a model keep the two-element form every earlier run recorded."""
    model = getattr(judge, "model_identity", None)
    return [judge.name, judge.version] if model is None else [judge.name, judge.version, dict(model)]
