from __future__ import annotations

from weighbridge.domain import ChatMessage, ChatRequest, GenerationParams
from weighbridge.runner.cache import cache_key

REQ = ChatRequest("a", (ChatMessage("user", "hi"),), GenerationParams(max_tokens=8))
TARGET = {"adapter": "llamacpp", "model": "m.gguf", "n_ctx": 2048, "chat_template": "gguf"}


def test_same_inputs_same_key_whatever_the_request_id() -> None:
    other_id = ChatRequest("b", REQ.messages, REQ.params)
    assert cache_key("d" * 64, TARGET, REQ) == cache_key("d" * 64, dict(reversed(TARGET.items())), other_id)


def test_every_input_that_changes_an_answer_changes_the_key() -> None:
    base = cache_key("d" * 64, TARGET, REQ)
    assert cache_key("e" * 64, TARGET, REQ) != base
    assert cache_key("d" * 64, {**TARGET, "chat_template": "sha256:0123"}, REQ) != base
    assert cache_key("d" * 64, {**TARGET, "stop": ["\nUser:"]}, REQ) != base
    assert cache_key("d" * 64, TARGET, ChatRequest("a", (ChatMessage("user", "hi!"),), REQ.params)) != base
    assert cache_key("d" * 64, TARGET, ChatRequest("a", REQ.messages, GenerationParams(max_tokens=9))) != base
