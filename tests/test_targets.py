"""Targets against the real default model: in process, and behind a real llama.cpp server."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from gguf import GGUFReader
from jinja2.sandbox import ImmutableSandboxedEnvironment

from tests.conftest import free_port
from tests.model_checks import CAPITALS, continuation_logprobs, token_rank
from weighbridge.domain import ChatMessage, ChatRequest, EndpointSpec, GenerationParams
from weighbridge.errors import WeighbridgeError
from weighbridge.targets.openai_compat import OpenAICompatTarget

FRANCE = ChatRequest(
    id="france",
    messages=(ChatMessage("user", "What is the capital of France?"),),
    params=GenerationParams(max_tokens=24),
)


def _gguf_chat_template(path: Path) -> str:
    """Read the template with the `gguf` package, independently of llama-cpp-python."""
    field = GGUFReader(str(path)).fields["tokenizer.chat_template"]
    return bytes(field.parts[field.data[0]]).decode("utf-8")


def test_llamacpp_applies_the_gguf_chat_template(llama_target: Any, default_model_path: Path) -> None:
    expected = (
        ImmutableSandboxedEnvironment()
        .from_string(_gguf_chat_template(default_model_path))
        .render(messages=[{"role": "user", "content": "What is the capital of France?"}], add_generation_prompt=True)
    )
    prompt = llama_target.format_prompt(FRANCE)
    assert prompt == expected
    # SmolLM2's template is ChatML and inserts its default system message when none is given.
    assert prompt.startswith("<|im_start|>system\nYou are a helpful AI assistant named SmolLM")
    assert "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n" in prompt


# Phrasings whose first answer token is not a near tie (the chat template's first-token gap between
# "The" and the runner-up, measured 2026-12-07 on an AMD EPYC, portable build: 2.50, 3.11, 1.66, 2.63,
# 0.92 and 0.71 nats). "What is the capital of France?" (gap 0.35) and "Which city is the capital of
# France?" (gap 0.03, "Le Grand Château..." on AVX-512) are left to the log-probability check.
PHRASINGS = [
    "what is the capital of france",
    "In which city is the French government based?",
    "Answer in one word: what is the capital of France?",
    "What is the name of the capital of France?",
    "Name the capital city of France.",
    "Tell me the capital of France.",
]


def test_llamacpp_answers_paris(llama_target: Any) -> None:
    """Through its chat template the model knows Paris: asserted on log-probabilities, not one greedy string.

    Greedy answers to the capital-of-France question sit on near ties at the first token: 'L' vs
    'The' 0.35 nats apart for "What is the capital of France?", 'The' vs 'Le' 0.03 for "Which city
    is the capital of France?", which answered "Le Grand Château, also known as the City of Light"
    on an AVX-512 build (issue 12). So (tests/model_checks.py):

    (a) In the assistant turn, after "The capital of France is", " Paris" is the most likely next
        token and outscores London, Berlin, Madrid and Rome by at least 3 nats. Measured
        2026-12-07 (AMD EPYC, portable build): P(Paris) 0.951 and 0.982, margin over the best other
        capital (London) 5.59 and 6.39 nats, next-best token of the vocabulary 4.45 and 6.39 nats
        behind; the greedy flips seen between builds were at gaps of 0.03 to 0.35 nats.
    (b) Of six phrasings answered greedily (24 tokens), at least 4 mention Paris; 6 of 6 did here.

    No contrast with a broken template is asserted, because none holds: the continuation after "The
    capital of France is" tests knowledge, not instruction following, and scored the same with the
    question alone (margin 5.74) and with the ChatML markers stripped (5.52). At the first answer
    token the raw question gave Paris less mass than the chat prompt (0.001 vs 0.012) but the
    stripped one more (0.097). The template itself is checked exactly above.
    """
    for ask in ("What is the capital of France?", "Which city is the capital of France?"):
        request = ChatRequest("p", (ChatMessage("user", ask),))
        context = llama_target.format_prompt(request) + "The capital of France is"
        scores, first = continuation_logprobs(llama_target, context, CAPITALS)
        best_other = max(scores[c] for c in CAPITALS[1:])
        assert scores[" Paris"] - best_other >= 3.0, (ask, scores)
        assert math.exp(scores[" Paris"]) > 0.5, (ask, scores)
        (paris,) = llama_target._tokenize(context + " Paris")[len(llama_target._tokenize(context)) :]
        assert token_rank(first, paris) == 0, ask

    requests = [
        ChatRequest(f"q{i}", (ChatMessage("user", q),), GenerationParams(max_tokens=24))
        for i, q in enumerate(PHRASINGS)
    ]
    gens = llama_target.generate(requests)
    named = [g.text for g in gens if "paris" in g.text.lower()]
    assert len(named) >= 4, [g.text for g in gens]
    for gen in gens:
        assert gen.completion_tokens > 0 and gen.prompt_tokens > 10
        assert gen.seconds > 0


def test_llamacpp_is_deterministic(llama_target: Any) -> None:
    req = ChatRequest("d", (ChatMessage("user", "Name three colours."),), GenerationParams(max_tokens=16))
    a, b = llama_target.generate([req, req])
    # Like with like (same process, same build): nothing may differ, near ties included.
    assert a.text == b.text


def test_openai_compat_against_real_server(llama_server: str, llama_target: Any) -> None:
    target = OpenAICompatTarget(EndpointSpec(base_url=llama_server, model="smollm2", concurrency=2))
    ask = ChatRequest(
        "p", (ChatMessage("user", "Which city is the capital of France?"),), GenerationParams(max_tokens=24)
    )
    other = ChatRequest("c", (ChatMessage("user", "Name three colours."),), GenerationParams(max_tokens=16))
    try:
        gens = target.generate([ask, other])
    finally:
        target.close()
    assert [g.request_id for g in gens] == ["p", "c"]
    # No assertion on what the one greedy answer says (a near tie: see test_llamacpp_answers_paris).
    assert all(g.text.strip() and g.completion_tokens > 0 for g in gens)
    # Same weights, same template, greedy, repeat penalty sent explicitly: the server and the
    # in-process adapter give the same answers. Like with like: the server imports the same
    # llama_cpp build on the same machine, so nothing may differ, near ties included.
    local = llama_target.generate([ask, other])
    assert [g.text.strip() for g in gens] == [g.text.strip() for g in local]


def test_openai_compat_dead_endpoint_is_a_clear_error() -> None:
    with pytest.raises(WeighbridgeError, match=r"Cannot reach the endpoint .* Start the server"):
        OpenAICompatTarget(EndpointSpec(base_url=f"http://127.0.0.1:{free_port()}/v1", model="x"))
