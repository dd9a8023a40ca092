"""In-process GGUF inference through llama.cpp (llama-cpp-python)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from weighbridge.domain import ChatRequest, Generation
from weighbridge.errors import WeighbridgeError
from weighbridge.evals.records import Capability
from weighbridge.targets.llamacpp_batch import BatchedDecoder, Job
from weighbridge.targets.llamacpp_build import current_build

# How many requests a review decodes together (the review, the references and the readiness check
# open their targets with it). On 2 cores, 16 hazard prompts x 64 tokens (benchmarks/batching.py):
# SmolLM2 1.11x the tokens/s of one at a time at 4, 1.12x at 8, 1.19x at 16; Gemma-3-270m 1.16x,
# 1.24x, 1.34x. 8 takes most of that for half the KV cache of 16 (a full context per sequence) and
# half the answers a crash mid-batch can lose.
REVIEW_BATCH_SIZE = 8

# The context llama.cpp allocates when none is asked for: the model's own length, capped here. A
# batched review holds `batch_size + 1` full contexts (`llamacpp_batch.BatchedDecoder`), so the
# model's own 8192 (SmolLM2) or 32768 (Gemma-3) would multiply the KV cache by 4-16 for prompts
# that fit in 2048; and the context size is part of `describe()`, so this cap keeps the runs and
# cache keys of every review made before the option existed.
DEFAULT_N_CTX = 2048


def default_threads() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def trained_context(model_path: Path) -> int | None:
    """The context length the GGUF declares (`{arch}.context_length`), None when it has none or the
    header cannot be read (llama.cpp's own load then says what is wrong with the file). Read from the
    first key/values only: about a millisecond, where parsing the whole header took 0.2 s."""
    from weighbridge.inspection.gguf_header import leading_fields

    def found(fields: dict[str, Any]) -> bool:
        return f"{fields.get('general.architecture')}.context_length" in fields

    try:
        fields = leading_fields(model_path, found)
    except Exception:  # MalformedFile, OSError, ValueError: the load reports it properly
        return None
    value = fields.get(f"{fields.get('general.architecture')}.context_length")
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def default_context(model_path: Path) -> int:
    """`DEFAULT_N_CTX`, or the model's own context when that is shorter."""
    trained = trained_context(model_path)
    return min(DEFAULT_N_CTX, trained) if trained else DEFAULT_N_CTX


class LlamaCppTarget:
    """A GGUF model loaded in this process.

    The chat template is taken from the GGUF's own `tokenizer.chat_template` and applied explicitly
    with llama-cpp-python's Jinja2 formatter. Relying on llama-cpp-python's guess of a chat format
    is how a wrongly formatted prompt (and gibberish answers) slips in unnoticed.

    Args:
        model_path: the GGUF file.
        n_threads: CPU threads; all available by default.
        n_ctx: context length; None: the model's own, capped at `DEFAULT_N_CTX` (see there).
        gpu_layers: layers offloaded to a GPU (llama.cpp's n_gpu_layers; -1: all). Needs a
            llama-cpp-python built with a GPU backend; a CPU build ignores it. Entered in
            `describe()` when not 0, since GPU kernels round differently from the CPU's.
        seed: llama.cpp's sampling seed at load time (each request also sends its own).
        chat_template: Jinja source that replaces the GGUF's template, for a base model that has
            none (see `weighbridge.references.PLAIN_DIALOGUE`) or to review a model deliberately
            through another format. Its `bos_token` is the model's BOS text only when the model's
            vocabulary asks for a BOS (`tokenizer.ggml.add_bos_token`), else "", so one format
            suits models with and without one. A short digest of it enters `describe()`.
        stop: strings that end generation (the turn markers of an explicit format); they enter
            `describe()` when given, since they change answers.
        batch_size: how many requests are decoded together (the runner hands over this many at
            once). 1, the default, answers each request through `create_chat_completion` exactly as
            before batching existed; the review uses `REVIEW_BATCH_SIZE`. Above 1, two or more
            requests go to `llamacpp_batch.BatchedDecoder`, which mirrors that call (same prompt
            tokens, prefix handling, sampler chain, stop and length rules) but advances all
            sequences in one llama.cpp decode per token. A lone request still takes
            `create_chat_completion`: one sequence in the batch context computes exactly the same
            thing, and a caller that asks one at a time (the LLM judge) never allocates the batch
            context's KV cache.

    Batched answers and single answers (see `llamacpp_batch` for the mechanics): with greedy
    decoding, a batched answer equals the batch_size=1 answer when the model's matrix products round
    the same whatever number of tokens they see: SmolLM2-135M Q4_1 gave bit-identical logits at 1 to
    16 sequences and all 16 hazard answers equal. llama.cpp's CPU kernels for other weight types
    (repacked Q4_0/Q4_K, tinyBLAS for Q5_0/Q8_0/F16 with AVX2) round a lone token differently than
    a block of them, so for such models an answer depends on how many requests shared its steps and in which
    slot it ran: Gemma-3-270m Q4_K_M matched on 9 of 16 hazard prompts at batch size 8. The same
    requests in the same order always give the same answers. Sampled answers (temperature > 0) use
    llama.cpp's own sampler chain with the request's seed, as the single path does. Because
    answers can change, a batch size above 1 enters `describe()` (run identity and cache key),
    while batch_size=1 leaves it exactly as before batching existed.

    `Generation.seconds` of a batched request is its share of the batch's wall time (its prompt
    evaluation plus each decoding step divided among the sequences in it).
    """

    def __init__(
        self,
        model_path: Path,
        *,
        n_threads: int | None = None,
        n_ctx: int | None = None,
        seed: int = 0,
        chat_template: str | None = None,
        stop: Sequence[str] = (),
        batch_size: int = 1,
        gpu_layers: int = 0,
    ) -> None:
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        if batch_size < 1:
            raise WeighbridgeError(f"batch_size must be at least 1 (got {batch_size})", "Use 1 to decode one at a time")
        self.batch_size = batch_size
        # Weights in hand (for the attacks that change them); log-probabilities come with them.
        self.capabilities: frozenset[Capability] = frozenset({"chat", "logprobs", "weights", "batch"})
        self._decoder: BatchedDecoder | None = None
        self.name = model_path.name
        self.model_path = model_path
        self.n_threads = n_threads or default_threads()
        if gpu_layers < -1:
            raise WeighbridgeError(f"gpu_layers must be -1 (all) or more (got {gpu_layers})", "Use -1, 0 or a count")
        self.n_ctx = n_ctx if n_ctx is not None else default_context(model_path)
        self.gpu_layers = gpu_layers
        self.seed = seed
        self.stop = tuple(stop)
        self._template_override = chat_template is not None
        try:
            # llama.cpp writes its load log to stderr from C; silence it unless asked.
            with _quiet_stderr():
                self._llm = Llama(
                    model_path=str(model_path),
                    n_ctx=self.n_ctx,
                    n_gpu_layers=gpu_layers,
                    n_threads=self.n_threads,
                    n_threads_batch=self.n_threads,
                    seed=seed,
                    verbose=False,
                )
        except (ValueError, RuntimeError) as exc:
            raise WeighbridgeError(
                f"llama.cpp could not load {model_path} ({exc})",
                "Check that the file is a complete, valid GGUF model (re-download or re-convert it)",
            ) from exc
        template = chat_template if chat_template is not None else self._llm.metadata.get("tokenizer.chat_template")
        if not template:
            self._llm.close()
            if chat_template is not None:
                raise WeighbridgeError("The chat template given is empty", "Give the Jinja source of a chat format")
            raise WeighbridgeError(
                f"{model_path.name} has no chat template in its GGUF metadata",
                "Review an instruct/chat model, give an explicit chat format (e.g. the plain-dialogue format of "
                "weighbridge.references), or add tokenizer.chat_template to the GGUF (gguf-new-metadata)",
            )
        eos = self._llm._model.token_get_text(self._llm.token_eos()) if self._llm.token_eos() >= 0 else ""
        bos = self._llm._model.token_get_text(self._llm.token_bos()) if self._llm.token_bos() >= 0 else ""
        if self._template_override and not self._llm._model.add_bos_token():
            bos = ""
        self.chat_template = template
        # create_chat_completion adds the formatter's EOS text to the stop strings; so does the batch.
        self._eos_text = eos
        self._formatter = Jinja2ChatFormatter(
            template=template, eos_token=eos, bos_token=bos, add_generation_prompt=True
        )
        self._llm.chat_handler = self._formatter.to_chat_handler()
        self._prefix = self._template_prefix()

    def _template_prefix(self) -> list[int]:
        """Tokens every single-turn prompt starts with: the template up to the user's words."""
        sentinel = "\u2063weighbridge-sentinel\u2063"
        text = str(self._formatter(messages=[{"role": "user", "content": sentinel}]).prompt)
        head = text.split(sentinel, 1)[0]
        return self._tokenize(head) if head else []

    def _tokenize(self, text: str) -> list[int]:
        """Tokens exactly as the chat handler makes them.

        Jinja2ChatFormatter reports `added_special=True`, so create_chat_completion tokenizes the
        rendered prompt with add_bos=False: any BOS comes from the template's `bos_token`. Adding
        one here as well would give the prefix two BOS tokens for models whose vocabulary adds one
        (Gemma, Llama 3) and the rewind would never match the prompt actually evaluated.
        """
        return list(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def _rewind_to_prefix(self, request: ChatRequest) -> None:
        """Make the answer a function of the prompt alone, whatever ran before it.

        llama-cpp-python reuses the KV cache for the longest prefix shared with the *previous*
        prompt. Where that boundary falls changes how the rest is batched, and that flips near-tie
        tokens: the same prompt answered differently depending on history (seen with SmolLM2). So
        the template's fixed prefix is evaluated once, alone, and every prompt that starts with it
        rewinds the context to exactly that point; other prompts start from an empty context.
        """
        messages: Any = [{"role": m.role, "content": m.content} for m in request.messages]
        prompt = str(self._formatter(messages=messages).prompt)
        tokens = self._tokenize(prompt)
        n = len(self._prefix)
        if n == 0 or len(tokens) <= n or tokens[:n] != self._prefix:
            self._llm.reset()  # type: ignore[no-untyped-call]
            return
        if self._llm.n_tokens < n or list(self._llm.input_ids[:n]) != self._prefix:
            self._llm.reset()  # type: ignore[no-untyped-call]
            self._llm.eval(self._prefix)
        self._llm.n_tokens = n

    def describe(self) -> dict[str, Any]:
        """Settings that change answers, the llama.cpp build among them (`llamacpp_build`)."""
        described: dict[str, Any] = {
            "adapter": "llamacpp",
            "model": self.name,
            "n_ctx": self.n_ctx,
            "build": current_build().identity(),
        }
        if self._template_override:
            described["chat_template"] = "sha256:" + hashlib.sha256(self.chat_template.encode("utf-8")).hexdigest()[:16]
        else:
            described["chat_template"] = "gguf"
        if self.stop:
            described["stop"] = list(self.stop)
        if self.batch_size > 1:
            described["batch_size"] = self.batch_size
        if self.gpu_layers != 0:  # only when asked: the CPU runs' identity stays as it always was
            described["gpu_layers"] = self.gpu_layers
        return described

    def runtime(self) -> dict[str, Any]:
        """How this process ran the model, recorded with a run but not part of its identity.

        Thread count is left out of `describe()`: each output of llama.cpp's CPU matrix products is
        summed by one thread, so the count moves work between threads, not the numbers (answers at
        1 and 2 threads are compared in tests/test_reproducibility.py).
        """
        return {
            "n_threads": self.n_threads,
            "batch_size": self.batch_size,
            "load_seed": self.seed,
            "gpu_layers": self.gpu_layers,
            "build": current_build().record(),
        }

    def format_prompt(self, request: ChatRequest) -> str:
        """The exact text llama.cpp sees; exposed so tests can prove the template is applied."""
        messages: Any = [{"role": m.role, "content": m.content} for m in request.messages]
        return str(self._formatter(messages=messages).prompt)

    def _prompt_tokens(self, request: ChatRequest) -> list[int]:
        """The prompt as llama.cpp will see it, refused with a clear error if it cannot fit."""
        tokens = self._tokenize(self.format_prompt(request))
        n_ctx = int(self._llm.n_ctx())
        if len(tokens) >= n_ctx:
            raise WeighbridgeError(
                f"The prompt of request {request.id} is {len(tokens)} tokens; the context holds {n_ctx}",
                "Shorten the prompt, or open the model with a larger context (--n-ctx)",
            )
        return tokens

    def generate(self, requests: Sequence[ChatRequest]) -> list[Generation]:
        """One generation per request, in order. Every prompt is checked before any is decoded."""
        prompts = [self._prompt_tokens(r) for r in requests]
        if self.batch_size == 1 or len(requests) < 2:
            return [self._one(r) for r in requests]
        n_ctx = int(self._llm.n_ctx())
        jobs = []
        for request, tokens in zip(requests, prompts, strict=True):
            # create_completion's rule: no cap (or one past the context) means up to the context.
            max_tokens = request.params.max_tokens
            if max_tokens <= 0 or max_tokens + len(tokens) >= n_ctx:
                max_tokens = n_ctx - len(tokens)
            jobs.append(Job(request, tokens, max_tokens))
        if self._decoder is None:
            stop = [*self.stop, self._eos_text]
            with _quiet_stderr():  # llama.cpp logs the new context's set-up from C
                self._decoder = BatchedDecoder(self._llm, self.batch_size, self._prefix, stop)
        return self._decoder.run(jobs)

    def _one(self, request: ChatRequest) -> Generation:
        p = request.params
        start = time.perf_counter()
        self._rewind_to_prefix(request)
        out: Any = self._llm.create_chat_completion(
            messages=[{"role": m.role, "content": m.content} for m in request.messages],  # type: ignore[misc]
            max_tokens=p.max_tokens,
            temperature=p.temperature,
            top_p=p.top_p,
            seed=p.seed,
            repeat_penalty=p.repeat_penalty,
            stop=list(self.stop),
        )
        seconds = time.perf_counter() - start
        choice = out["choices"][0]
        usage = out["usage"]
        return Generation(
            request_id=request.id,
            text=choice["message"]["content"] or "",
            prompt_tokens=int(usage["prompt_tokens"]),
            completion_tokens=int(usage["completion_tokens"]),
            seconds=seconds,
            finish_reason=str(choice.get("finish_reason") or "stop"),
        )

    def close(self) -> None:
        if self._decoder is not None:
            self._decoder.close()  # it borrows the model, so it goes first
            self._decoder = None
        self._llm.close()


@contextlib.contextmanager
def _quiet_stderr() -> Any:
    """Redirect fd 2 (where llama.cpp's C code logs) to /dev/null for the duration."""
    try:
        fd = os.dup(2)
    except OSError:
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(fd, 2)
        os.close(fd)
        os.close(devnull)
