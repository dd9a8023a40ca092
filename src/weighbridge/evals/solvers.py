"""Built-in solvers: how an item becomes a transcript."""

from __future__ import annotations

from collections.abc import Sequence

from weighbridge.domain import ChatMessage, ChatRequest, GenerationParams
from weighbridge.evals.protocols import Target
from weighbridge.evals.records import EvalItem, Transcript
from weighbridge.evals.registry import solvers


def request_for(item: EvalItem, params: GenerationParams) -> ChatRequest:
    # No system prompt of our own: the model is reviewed as shipped, with its template's default.
    return ChatRequest(id=item.id, messages=item.input, params=params)


class PlainSolver:
    """Send each item's conversation once, all of a batch together, and keep the answer."""

    name = "plain"

    def solve(self, items: Sequence[EvalItem], target: Target, params: GenerationParams) -> list[Transcript]:
        answers = target.generate([request_for(item, params) for item in items])
        return [
            Transcript(item.id, (*item.input, ChatMessage("assistant", answer.text)), (answer,))
            for item, answer in zip(items, answers, strict=True)
        ]


solvers.register("plain")(PlainSolver)
