"""A Hugging Face model directory answered by transformers in this process.

Why a second in-process engine beside llama.cpp: labs hand over safetensors directories, not
GGUF files, and converting one to GGUF to review it reviews the conversion (a quantization, a
re-implemented tokenizer) rather than the weights as released. transformers runs the directory as
it is, on the CPU by default or on a GPU (`device="cuda"`), and it gives log-probabilities and the
weights themselves for the checks that need them.

Only local files are read (`local_files_only=True`, no hub), only safetensors weights are loaded
(`use_safetensors=True`: a pickled `pytorch_model.bin` in a submission is inspected, never
unpickled), and no code from the directory is run (`trust_remote_code=False`).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from weighbridge.domain import ChatMessage, ChatRequest, Generation, GenerationParams
from weighbridge.errors import WeighbridgeError
from weighbridge.evals.records import Capability

# How many requests a review hands over at once: padded batches on a CPU gain less than llama.cpp's
# multi-sequence decoding but still amortise the weights' reads over the batch.
REVIEW_BATCH_SIZE = 8

_DTYPES = ("auto", "float32", "bfloat16", "float16")


def is_hf_directory(path: Path) -> bool:
    """A directory transformers can open offline: a config.json beside safetensors weights."""
    return path.is_dir() and (path / "config.json").is_file() and any(path.glob("*.safetensors"))


class HFTarget:
    """A transformers causal LM loaded from a local directory.

    Args:
        model_dir: the directory (config.json, *.safetensors, the tokenizer files).
        name: the model's name in `describe()` (the directory may be a temporary custody copy
            whose path changes every run; the name must not).
        n_threads: torch's CPU threads (torch's own default when None). The setting is process-wide.
        batch_size: requests generated together, left-padded to one length.
        device: "cpu", "cuda" or "cuda:N".
        dtype: "auto" (float32 on the CPU, where bfloat16 matmuls are emulated on most machines and
            slower; the checkpoint's own dtype on a GPU), "float32", "bfloat16" or "float16".
        chat_template: Jinja source that replaces the tokenizer's template.
        stop: strings that end generation; the text is cut before them.

    Greedy answers in a padded batch equal one-at-a-time answers when the model's products round
    the same whatever the batch shape; on the CPU in float32 that held for the tiny test model
    (tests/test_hf_target.py), but as with llama.cpp a near tie can flip, so the batch size enters
    `describe()`. Sampled requests (temperature > 0) are generated in groups of equal parameters,
    the torch generator seeded with their seed once per group.
    """

    def __init__(
        self,
        model_dir: Path,
        *,
        name: str | None = None,
        n_threads: int | None = None,
        batch_size: int = 1,
        device: str = "cpu",
        dtype: str = "auto",
        chat_template: str | None = None,
        stop: Sequence[str] = (),
    ) -> None:
        import torch
        import transformers
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if batch_size < 1:
            raise WeighbridgeError(f"batch_size must be at least 1 (got {batch_size})", "Use 1 for one at a time")
        if dtype not in _DTYPES:
            raise WeighbridgeError(f"Unknown dtype {dtype!r}", f"Choose one of: {', '.join(_DTYPES)}")
        if not is_hf_directory(model_dir):
            raise WeighbridgeError(
                f"{model_dir} is not a Hugging Face model directory with safetensors weights",
                "Give a directory holding config.json, *.safetensors and the tokenizer files "
                "(`weighbridge convert MODEL.gguf --to hf OUT/` makes one from a GGUF)",
            )
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise WeighbridgeError(
                f"Device {device!r} was asked for but torch sees no CUDA GPU",
                "Install a CUDA build of torch on a machine with a GPU, or use --device cpu",
            )
        if n_threads:
            torch.set_num_threads(n_threads)
        self.name = name or model_dir.name
        self.batch_size = batch_size
        self.capabilities: frozenset[Capability] = frozenset({"chat", "logprobs", "weights", "batch"})
        self.device = device
        self.stop = tuple(stop)
        # The engine's build, as llama.cpp's `build` is: other versions can round (and answer) differently.
        self._build = f"transformers {transformers.__version__}, torch {torch.__version__}"
        self._n_threads = torch.get_num_threads()
        # The review shows its own progress; transformers' bars would interleave with it.
        transformers.utils.logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        try:
            self.tokenizer: Any = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
            torch_dtype = _torch_dtype(dtype, device)
            loaded: Any = AutoModelForCausalLM.from_pretrained(
                model_dir,
                local_files_only=True,
                use_safetensors=True,
                trust_remote_code=False,
                dtype=torch_dtype,
            )
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise WeighbridgeError(
                f"transformers could not load {model_dir} ({exc})",
                "Check that the directory is a complete causal LM (config.json, safetensors weights, tokenizer)",
            ) from exc
        self.model: Any = loaded
        self.model.to(device)
        self.model.eval()  # no dropout: answers are a function of the prompt
        self.dtype = str(self.model.dtype).removeprefix("torch.")
        template = chat_template if chat_template is not None else self.tokenizer.chat_template
        if not template:
            raise WeighbridgeError(
                f"{self.name} has no chat template in its tokenizer files",
                "Review an instruct/chat model, or give an explicit chat format (TargetOptions.chat_template)",
            )
        self.chat_template: str = template
        self._template_override = chat_template is not None
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self._eos = _eos_ids(self.model, self.tokenizer)

    def describe(self) -> dict[str, Any]:
        """What changes answers: engine versions, device, dtype, template, batch size, stops."""
        digest = hashlib.sha256(self.chat_template.encode("utf-8")).hexdigest()[:16]
        described: dict[str, Any] = {
            "adapter": "hf",
            "model": self.name,
            "device": self._device_identity(),
            "dtype": self.dtype,
            "chat_template": "sha256:" + digest,
            "batch_size": self.batch_size,
            "build": self._build,
        }
        if self.stop:
            described["stop"] = list(self.stop)
        return described

    def runtime(self) -> dict[str, Any]:
        """How this process ran the model, recorded with a run but not part of its identity."""
        return {"n_threads": self._n_threads, "batch_size": self.batch_size, "device": self.device}

    def _device_identity(self) -> str:
        """The kind of device, and a GPU's model (kernels differ between GPUs, not between indices)."""
        if not self.device.startswith("cuda"):
            return self.device
        import torch

        return f"cuda ({torch.cuda.get_device_name(torch.device(self.device))})"

    def format_prompt(self, messages: Sequence[ChatMessage]) -> str:
        """The exact text the model sees (the chat template applied, the assistant turn opened)."""
        rendered = self.tokenizer.apply_chat_template(
            [{"role": m.role, "content": m.content} for m in messages],
            chat_template=self.chat_template,
            add_generation_prompt=True,
            tokenize=False,
        )
        return str(rendered)

    def _encode(self, messages: Sequence[ChatMessage]) -> list[int]:
        # The template writes any BOS itself, so the tokenizer must not add another.
        return list(self.tokenizer(self.format_prompt(messages), add_special_tokens=False)["input_ids"])

    def generate(self, requests: Sequence[ChatRequest]) -> list[Generation]:
        """One generation per request, in order; consecutive requests with equal parameters share
        a padded batch of at most `batch_size`."""
        results: list[Generation] = []
        group: list[ChatRequest] = []
        for request in requests:
            if group and (request.params != group[0].params or len(group) == self.batch_size):
                results.extend(self._generate_group(group))
                group = []
            group.append(request)
        if group:
            results.extend(self._generate_group(group))
        return results

    def _generate_group(self, requests: Sequence[ChatRequest]) -> list[Generation]:
        import torch

        params = requests[0].params
        prompts = [self._encode(r.messages) for r in requests]
        limit = int(getattr(self.model.config, "max_position_embeddings", 0) or 0)
        longest = max(len(p) for p in prompts)
        if limit and longest >= limit:
            raise WeighbridgeError(
                f"A prompt is {longest} tokens; the model's context holds {limit}", "Shorten the prompt"
            )
        max_new = params.max_tokens if params.max_tokens > 0 else (limit or 2048) - longest
        if limit:
            max_new = min(max_new, limit - longest)
        batch = self.tokenizer.pad({"input_ids": prompts}, padding=True, return_tensors="pt").to(self.device)
        start = time.perf_counter()
        with torch.inference_mode():
            if params.temperature > 0:
                torch.manual_seed(params.seed)
            output = self.model.generate(
                **batch,
                **_sampling(params),
                max_new_tokens=max_new,
                pad_token_id=self.tokenizer.pad_token_id,
                eos_token_id=self._eos,
                stop_strings=list(self.stop) or None,
                tokenizer=self.tokenizer if self.stop else None,
            )
        share = (time.perf_counter() - start) / len(requests)
        new_tokens = output[:, batch["input_ids"].shape[1] :].tolist()
        return [
            self._generation(r, p, tokens, max_new, share)
            for r, p, tokens in zip(requests, prompts, new_tokens, strict=True)
        ]

    def _generation(
        self, request: ChatRequest, prompt: list[int], tokens: list[int], max_new: int, seconds: float
    ) -> Generation:
        """Cut one row of the batch at its end: the first end-of-generation token, a stop string, or
        the token budget ("length", as llama.cpp reports it)."""
        answer = tokens
        ended = False
        for i, token in enumerate(tokens):
            if token in self._eos:
                answer, ended = tokens[:i], True
                break
        text = self.tokenizer.decode(answer, skip_special_tokens=True)
        for stop in self.stop:
            at = text.find(stop)
            if at >= 0:
                text, ended = text[:at], True
        finish = "stop" if ended or len(answer) < max_new else "length"
        return Generation(
            request_id=request.id,
            text=text,
            prompt_tokens=len(prompt),
            completion_tokens=len(answer),
            seconds=seconds,
            finish_reason=finish,
        )

    def first_token_logprobs(
        self, messages: Sequence[ChatMessage], top_k: int = 5, answer_prefix: str = ""
    ) -> list[tuple[str, float]]:
        """The `top_k` likeliest first tokens of the answer (after `answer_prefix`, when given) with
        their natural-log probabilities: what the model means to say, read without decoding, so a
        near tie shows as one instead of flipping a greedy answer between machines."""
        import torch

        prompt = self.format_prompt(messages) + answer_prefix
        encoded = self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        ids = torch.tensor([encoded], device=self.device)
        with torch.inference_mode():
            logits = self.model(input_ids=ids).logits[0, -1].float()
        values, indices = torch.log_softmax(logits, dim=-1).topk(top_k)
        return [(self.tokenizer.decode([int(i)]), float(v)) for i, v in zip(indices, values, strict=True)]

    def close(self) -> None:
        """Drop the weights (and a GPU's memory with them)."""
        self.model = None
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.empty_cache()


def _torch_dtype(dtype: str, device: str) -> Any:
    import torch

    if dtype == "auto":
        return "auto" if device.startswith("cuda") else torch.float32
    return getattr(torch, dtype)


def _sampling(params: GenerationParams) -> dict[str, Any]:
    """GenerationParams as transformers' generate() arguments (repeat_penalty is llama.cpp's name)."""
    chosen: dict[str, Any] = {"repetition_penalty": params.repeat_penalty}
    if params.temperature > 0:
        chosen.update(do_sample=True, temperature=params.temperature, top_p=params.top_p)
    else:
        chosen.update(do_sample=False, temperature=None, top_p=None, top_k=None)
    return chosen


def _eos_ids(model: Any, tokenizer: Any) -> list[int]:
    """Every token that ends an answer: the generation config's (a chat model's end-of-turn) and
    the tokenizer's EOS."""
    configured = getattr(model.generation_config, "eos_token_id", None)
    listed: list[Any] = configured if isinstance(configured, list) else [configured]
    ids = [int(i) for i in listed if i is not None]
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(int(tokenizer.eos_token_id))
    return ids
