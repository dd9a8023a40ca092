"""vLLM in process, for a Hugging Face directory on a GPU: registered only where vLLM is installed.

Why optional and only when named (`--engine vllm`): vLLM needs a CUDA GPU and gigabytes of
packages, and its kernels give other answers than transformers' for the same weights, so it never
takes over a review silently. For a server instead of a library, run `vllm serve DIR` and review
it as an endpoint (a model.yaml with `base_url`), which needs nothing from this module.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from weighbridge.domain import ChatRequest, Generation, GenerationParams, ModelRef
from weighbridge.evals.protocols import Target
from weighbridge.evals.records import Capability, TargetOptions
from weighbridge.targets.hf import is_hf_directory

REVIEW_BATCH_SIZE = 32  # vLLM schedules its own continuous batch; this is only the hand-over size


class VLLMKind:
    name = "vllm"
    explicit_only = True  # chosen with --engine vllm, never instead of transformers

    def accepts(self, model: ModelRef) -> bool:
        return model.format == "hf" and model.path is not None and is_hf_directory(Path(model.path))

    def open(self, model: ModelRef, options: TargetOptions) -> Target:
        assert model.path is not None
        return VLLMTarget(Path(model.path), model.name, options)


class VLLMTarget:  # pragma: no cover - needs vLLM and a GPU
    """`vllm.LLM.chat` over a local directory, greedy or seeded sampling per request."""

    def __init__(self, model_dir: Path, name: str, options: TargetOptions) -> None:
        import vllm

        self.name = name
        self.batch_size = options.batch_size or REVIEW_BATCH_SIZE
        self.capabilities: frozenset[Capability] = frozenset({"chat", "logprobs", "batch"})
        self._version = str(vllm.__version__)
        self._dtype = options.dtype
        self._template = options.chat_template
        self._stop = list(options.stop)
        self._llm: Any = vllm.LLM(
            model=str(model_dir), dtype=options.dtype, max_model_len=options.n_ctx, trust_remote_code=False
        )

    def describe(self) -> dict[str, Any]:
        described: dict[str, Any] = {"adapter": "vllm", "model": self.name, "vllm": self._version, "dtype": self._dtype}
        if self._template is not None:
            described["chat_template"] = "sha256:" + hashlib.sha256(self._template.encode("utf-8")).hexdigest()[:16]
        if self._stop:
            described["stop"] = self._stop
        return described

    def generate(self, requests: Sequence[ChatRequest]) -> list[Generation]:
        from vllm import SamplingParams

        conversations = [[{"role": m.role, "content": m.content} for m in r.messages] for r in requests]
        sampling = [_sampling(SamplingParams, r.params, self._stop) for r in requests]
        start = time.perf_counter()
        outputs = self._llm.chat(conversations, sampling, chat_template=self._template, use_tqdm=False)
        share = (time.perf_counter() - start) / max(1, len(requests))
        return [
            Generation(
                request_id=r.id,
                text=o.outputs[0].text,
                prompt_tokens=len(o.prompt_token_ids),
                completion_tokens=len(o.outputs[0].token_ids),
                seconds=share,
                finish_reason=str(o.outputs[0].finish_reason or "stop"),
            )
            for r, o in zip(requests, outputs, strict=True)
        ]

    def close(self) -> None:
        self._llm = None


def _sampling(cls: Any, p: GenerationParams, stop: list[str]) -> Any:  # pragma: no cover
    return cls(
        max_tokens=p.max_tokens,
        temperature=p.temperature,
        top_p=p.top_p,
        seed=p.seed,
        repetition_penalty=p.repeat_penalty,
        stop=stop or None,
    )
