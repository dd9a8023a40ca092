"""Built-in solvers: how an item becomes a transcript."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

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


#: Letters for up to 26 choices; multiple-choice sets rarely have more than five.
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def choice_prompt(question: str, choices: Sequence[str]) -> str:
    """The question with lettered choices and the instruction to answer with a letter, the usual
    zero-shot multiple-choice form (MMLU-style), so any chat model can answer it."""
    lines = [question.strip(), ""]
    lines += [f"{LETTERS[i]}) {choice}" for i, choice in enumerate(choices)]
    lines += ["", "Answer with the letter of the correct choice."]
    return "\n".join(lines)


class MultipleChoiceSolver:
    """Ask each item's question with its choices lettered in the last user message."""

    name = "multiple_choice"

    def solve(self, items: Sequence[EvalItem], target: Target, params: GenerationParams) -> list[Transcript]:
        asked = [
            replace(item, input=(*item.input[:-1], ChatMessage("user", choice_prompt(item.prompt, item.choices))))
            for item in items
        ]
        return PlainSolver().solve(asked, target, params)


solvers.register("multiple_choice")(MultipleChoiceSolver)
