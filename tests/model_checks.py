"""Checks of a real model's behaviour that survive a change of CPU (issue 12).

llama-cpp-python compiles llama.cpp for the CPU it is built on, and the kernels for each instruction
set round differently. Where two tokens are nearly tied, that decides which one greedy decoding
takes, and from there the answer goes its own way: on an AVX-512 machine SmolLM2-135M answered
"Which city is the capital of France?" with "Le Grand Château, also known as the City of Light, ...",
where AVX2 machines said Paris. So no test asserts one greedy string of a real model. Tests assert
instead

* where the model puts its probability among alternatives, with a margin (measured, and stated
  where it is asserted) far larger than anything rounding can move: `continuation_logprobs`;
* a majority over several phrasings answered greedily, with slack for some to flip;
* equality of two paths on the same machine and the same build (like with like), which is exact.

The log-probabilities are read straight from the target's own `llama_cpp.Llama`, so they are those
of the build and weights under test, through the target's own tokenizer call.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from weighbridge.targets.llamacpp import LlamaCppTarget

#: Continuations of "The capital of France is": the right one first.
CAPITALS = (" Paris", " London", " Berlin", " Madrid", " Rome")


def _log_softmax(logits: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    shifted = logits - logits.max()
    result: npt.NDArray[np.float64] = shifted - np.log(np.exp(shifted).sum())
    return result


def _last_logits(target: LlamaCppTarget) -> npt.NDArray[np.float64]:
    """Logits of the last token evaluated (a Llama opened with logits_all=False keeps only those)."""
    llm = target._llm
    row = np.ctypeslib.as_array(llm._ctx.get_logits_ith(-1), shape=(llm.n_vocab(),))
    return np.array(row, dtype=np.float64)


def next_token_logprobs(target: LlamaCppTarget, context: str) -> npt.NDArray[np.float64]:
    """Log-probabilities over the whole vocabulary of the token that follows `context`."""
    return continuation_logprobs(target, context, [""])[1]


def continuation_logprobs(
    target: LlamaCppTarget, context: str, continuations: Sequence[str]
) -> tuple[dict[str, float], npt.NDArray[np.float64]]:
    """Total log-probability of each continuation after `context`, and the next-token distribution.

    Each continuation is tokenized together with the context (as the model would see it in an
    answer) and scored token by token. The context's tokens must be a prefix of that. The model's
    state is reset afterwards, so the target rebuilds its prefix cache exactly as before.
    """
    llm = target._llm
    head = target._tokenize(context)
    scores: dict[str, float] = {}
    try:
        llm.reset()
        llm.eval(head)
        first = _log_softmax(_last_logits(target))
        for text in continuations:
            whole = target._tokenize(context + text)
            assert whole[: len(head)] == head, f"{text!r} changes the tokens of the context"
            tail = whole[len(head) :]
            total, logprobs = 0.0, first
            for i, token in enumerate(tail):
                total += float(logprobs[token])
                if i + 1 < len(tail):
                    llm.eval([token])
                    logprobs = _log_softmax(_last_logits(target))
            scores[text] = total
            llm.n_tokens = len(head)  # rewind to the context for the next continuation
    finally:
        llm.reset()
    return scores, first


def token_rank(logprobs: npt.NDArray[np.float64], token: int) -> int:
    """0 for the most likely token, 1 for the next, ..."""
    return int((logprobs > logprobs[token]).sum())
