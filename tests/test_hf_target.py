"""The transformers target on a tiny random Llama built in the test (tests/hf_fixtures.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hf_fixtures import CHATML, build_tiny_hf
from weighbridge.domain import ChatMessage, ChatRequest, GenerationParams
from weighbridge.errors import WeighbridgeError
from weighbridge.evals.protocols import Target
from weighbridge.targets.hf import HFTarget

PROMPTS = [
    "Which city is the capital of France?",
    "hello",
    "Tell me a story about a dragon who guards a library of old books, please, and make it long.",
    "How do I bake bread?",
    "world",
]


def requests(params: GenerationParams) -> list[ChatRequest]:
    return [ChatRequest(f"r{i}", (ChatMessage("user", p),), params) for i, p in enumerate(PROMPTS)]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_hf(tmp_path_factory.mktemp("tiny-hf") / "tiny-llama")


@pytest.fixture(scope="module")
def batched(tiny_dir: Path) -> Iterator[HFTarget]:
    target = HFTarget(tiny_dir, name="tiny-llama", batch_size=4, n_threads=1)
    yield target
    target.close()


def test_it_is_a_target_with_the_declared_capabilities(batched: HFTarget) -> None:
    assert isinstance(batched, Target)
    assert batched.capabilities == frozenset({"chat", "logprobs", "weights", "batch"})


def test_batched_greedy_answers_equal_one_at_a_time(batched: HFTarget) -> None:
    """Left padding and the attention mask keep each row's answer what it is alone (5 requests in
    batches of 4 and 1, prompts of 12 to 30 tokens)."""
    reqs = requests(GenerationParams(max_tokens=12))
    together = batched.generate(reqs)
    alone = [batched.generate([r])[0] for r in reqs]
    assert [g.request_id for g in together] == [r.id for r in reqs]
    assert [g.text for g in together] == [g.text for g in alone]
    assert len({g.prompt_tokens for g in together}) > 2  # the padding was really exercised


def test_token_counts_and_length_finish(batched: HFTarget) -> None:
    reqs = requests(GenerationParams(max_tokens=7))
    for request, generation in zip(reqs, batched.generate(reqs), strict=True):
        prompt = batched.tokenizer(batched.format_prompt(request.messages), add_special_tokens=False)["input_ids"]
        assert generation.prompt_tokens == len(prompt)
        # A random model almost never draws its end token: every answer runs to the budget.
        assert generation.completion_tokens == 7 and generation.finish_reason == "length"
        assert generation.seconds > 0


def test_the_chat_template_is_applied(batched: HFTarget) -> None:
    text = batched.format_prompt((ChatMessage("system", "Be brief."), ChatMessage("user", "hello")))
    assert text == "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n"


def test_an_end_token_stops_the_answer(tmp_path: Path) -> None:
    target = HFTarget(build_tiny_hf(tmp_path / "mute", eos_first=True), batch_size=2)
    try:
        out = target.generate(requests(GenerationParams(max_tokens=8))[:3])
    finally:
        target.close()
    assert [(g.text, g.completion_tokens, g.finish_reason) for g in out] == [("", 0, "stop")] * 3


def test_stop_strings_cut_the_text_and_finish_with_stop(batched: HFTarget, tiny_dir: Path) -> None:
    [free] = batched.generate(requests(GenerationParams(max_tokens=12))[:1])
    word = free.text.strip()[-3:]  # a piece of its own answer, so the stop string is reached
    assert word
    stopped = HFTarget(tiny_dir, name="tiny-llama", stop=(word,))
    try:
        [cut] = stopped.generate(requests(GenerationParams(max_tokens=12))[:1])
    finally:
        stopped.close()
    assert word not in cut.text and free.text.startswith(cut.text) and cut.finish_reason == "stop"
    assert stopped.describe()["stop"] == [word]


def test_sampling_is_seeded(batched: HFTarget) -> None:
    params = GenerationParams(max_tokens=10, temperature=1.0, top_p=0.9, seed=7)
    first = [g.text for g in batched.generate(requests(params))]
    again = [g.text for g in batched.generate(requests(params))]
    greedy = [g.text for g in batched.generate(requests(GenerationParams(max_tokens=10)))]
    assert first == again and first != greedy


def test_describe_names_what_changes_answers(batched: HFTarget, tiny_dir: Path) -> None:
    described = batched.describe()
    assert described["adapter"] == "hf" and described["model"] == "tiny-llama"  # the name, never the path
    assert described["device"] == "cpu" and described["dtype"] == "float32" and described["batch_size"] == 4
    assert described["chat_template"].startswith("sha256:") and "transformers" in described["build"]
    assert str(tiny_dir) not in str(described)
    other = HFTarget(tiny_dir, name="tiny-llama", batch_size=4, chat_template=CHATML.replace("assistant", "bot"))
    try:
        assert other.describe()["chat_template"] != described["chat_template"]
    finally:
        other.close()


def test_first_token_logprobs_are_a_distribution(batched: HFTarget) -> None:
    top = batched.first_token_logprobs((ChatMessage("user", PROMPTS[0]),), top_k=5)
    assert len(top) == 5 and all(lp <= 0 for _, lp in top)
    assert [lp for _, lp in top] == sorted((lp for _, lp in top), reverse=True)
    [greedy] = batched.generate(requests(GenerationParams(max_tokens=1))[:1])
    assert greedy.text == top[0][0]  # the likeliest first token is the greedy one


def test_refusals_are_clear(tmp_path: Path, tiny_dir: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(WeighbridgeError, match="not a Hugging Face model directory"):
        HFTarget(tmp_path / "empty")
    with pytest.raises(WeighbridgeError, match="Unknown dtype"):
        HFTarget(tiny_dir, dtype="float8")
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(WeighbridgeError, match="no CUDA GPU"):
            HFTarget(tiny_dir, device="cuda")
