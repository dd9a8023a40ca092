"""Targets against the real default model: in process, and behind a real llama.cpp server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from gguf import GGUFReader
from jinja2.sandbox import ImmutableSandboxedEnvironment

from tests.conftest import free_port
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


def test_llamacpp_answers_paris(llama_target: Any) -> None:
    """The chat path gives a sensible answer, which a mis-formatted prompt does not.

    The exact phrasing "What is the capital of France?" is a near tie for this 135M Q4_1 model under
    llama.cpp: with the template's default system prompt the first-token logits were 'L' 24.91 vs
    'The' 24.56 (measured 2026-11-23), and llama.cpp's 8-bit activation quantisation tips it to
    "L'Étoile, la Marseillaise, ..." even though tokens match an independent BPE of the GGUF vocab.
    So the check uses phrasings that are not ties; each must name Paris.
    """
    asks = ["Which city is the capital of France?", "what is the capital of france"]
    requests = [
        ChatRequest(f"q{i}", (ChatMessage("user", q),), GenerationParams(max_tokens=24)) for i, q in enumerate(asks)
    ]
    for gen in llama_target.generate(requests):
        assert "paris" in gen.text.lower(), gen.text
        assert gen.completion_tokens > 0 and gen.prompt_tokens > 10
        assert gen.seconds > 0


def test_llamacpp_is_deterministic(llama_target: Any) -> None:
    req = ChatRequest("d", (ChatMessage("user", "Name three colours."),), GenerationParams(max_tokens=16))
    a, b = llama_target.generate([req, req])
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
    assert "paris" in gens[0].text.lower(), gens[0].text
    assert all(g.completion_tokens > 0 for g in gens)
    # Same weights, same template, greedy, repeat penalty sent explicitly: the server and the
    # in-process adapter give the same answers.
    local = llama_target.generate([ask, other])
    assert [g.text.strip() for g in gens] == [g.text.strip() for g in local]


def test_openai_compat_dead_endpoint_is_a_clear_error() -> None:
    with pytest.raises(WeighbridgeError, match=r"Cannot reach the endpoint .* Start the server"):
        OpenAICompatTarget(EndpointSpec(base_url=f"http://127.0.0.1:{free_port()}/v1", model="x"))
