"""The multiple-choice scorer: which letter did the answer pick, and is it the item's target?

Exact, not learned: the first standalone choice letter in the answer (after an optional "Answer:" or
"The answer is"), so it needs no validation set and carries no error to correct for. An answer
that names no letter is incorrect, labelled `no_choice` so a report can tell refusal from error.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

from weighbridge.domain import Judgement
from weighbridge.evals.records import EvalItem, Score, Transcript
from weighbridge.evals.registry import scorers
from weighbridge.evals.solvers import LETTERS

VERSION: Final = "1.0.0"
_LETTER = re.compile(r"(?:answer(?: is)?\s*[:\-]?\s*)?\(?\b([A-Z])\b\)?", re.IGNORECASE)


def picked(answer: str, n_choices: int) -> str | None:
    """The letter the answer picks among the first `n_choices`, or None."""
    valid = LETTERS[:n_choices]
    for match in _LETTER.finditer(answer):
        letter = match.group(1).upper()
        # A lone lower-case "a" is an article, not a choice: only take it when it is marked as one.
        if letter in valid and (match.group(1).isupper() or match.group(0) != match.group(1)):
            return letter
    return None


def target_letter(item: EvalItem) -> str:
    """The item's target as a letter: given as one, or as the text of the right choice."""
    target = (item.target or "").strip()
    if len(target) == 1 and target.upper() in LETTERS[: len(item.choices)]:
        return target.upper()
    if target in item.choices:
        return LETTERS[item.choices.index(target)]
    raise ValueError(f"item {item.id!r} has no valid target among its {len(item.choices)} choices")


class ChoiceScorer:
    name = "choice"
    version = VERSION

    def score(self, batch: Sequence[tuple[EvalItem, Transcript]]) -> list[Score]:
        out: list[Score] = []
        for item, transcript in batch:
            letter = picked(transcript.answer.text, len(item.choices))
            expected = target_letter(item)
            label = "no_choice" if letter is None else "correct" if letter == expected else "incorrect"
            out.append(Judgement(self.name, self.version, label, False, 1.0, f"picked {letter}, expected {expected}"))
        return out


scorers.register("choice")(ChoiceScorer)
