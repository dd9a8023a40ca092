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


def default_threads() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


class LlamaCppTarget:
    """A GGUF model loaded in this process.

    The chat template is taken from the GGUF's own `tokenizer.chat_template` and applied explicitly
    with llama-cpp-python's Jinja2 formatter. Relying on llama-cpp-python's guess of a chat format
    is how a wrongly formatted prompt (and gibberish answers) slips in unnoticed.

    Args:
        model_path: the GGUF file.
        n_threads: CPU threads; all available by default.
        n_ctx: context length.
        seed: llama.cpp's sampling seed at load time (each request also sends its own).
        chat_template: Jinja source that replaces the GGUF's template, for a base model that has
            none (see `weighbridge.references.PLAIN_DIALOGUE`) or to review a model deliberately
            through another format. Its `bos_token` is the model's BOS text only when the model's
            vocabulary asks for a BOS (`tokenizer.ggml.add_bos_token`), else "", so one format
            suits models with and without one. A short digest of it enters `describe()`.
        stop: strings that end generation (the turn markers of an explicit format); they enter
            `describe()` when given, since they change answers.
    """

    batch_size = 1

    def __init__(
        self,
        model_path: Path,
        *,
        n_threads: int | None = None,
        n_ctx: int = 2048,
        seed: int = 0,
        chat_template: str | None = None,
        stop: Sequence[str] = (),
    ) -> None:
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.name = model_path.name
        self.model_path = model_path
        self.n_threads = n_threads or default_threads()
        self.n_ctx = n_ctx
        self.stop = tuple(stop)
        self._template_override = chat_template is not None
        try:
            # llama.cpp writes its load log to stderr from C; silence it unless asked.
            with _quiet_stderr():
                self._llm = Llama(
                    model_path=str(model_path),
                    n_ctx=n_ctx,
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
        """Settings that change answers. Defaults add nothing, so existing run keys stay the same."""
        described: dict[str, Any] = {"adapter": "llamacpp", "model": self.name, "n_ctx": self.n_ctx}
        if self._template_override:
            described["chat_template"] = "sha256:" + hashlib.sha256(self.chat_template.encode("utf-8")).hexdigest()[:16]
        else:
            described["chat_template"] = "gguf"
        if self.stop:
            described["stop"] = list(self.stop)
        return described

    def format_prompt(self, request: ChatRequest) -> str:
        """The exact text llama.cpp sees; exposed so tests can prove the template is applied."""
        messages: Any = [{"role": m.role, "content": m.content} for m in request.messages]
        return str(self._formatter(messages=messages).prompt)

    def generate(self, requests: Sequence[ChatRequest]) -> list[Generation]:
        return [self._one(r) for r in requests]

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
