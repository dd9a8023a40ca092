"""The judge interface: a response in, a labelled verdict out."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from weighbridge.domain import Judgement


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
