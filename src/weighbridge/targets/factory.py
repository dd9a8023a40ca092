"""The one target factory: a model and its options in, an open `Target` out.

Which engine answers is decided here and nowhere else: `options.engine` when the reviewer names a
registered target kind, else the first registered kind that accepts the model, in registration
order (llama.cpp for GGUF, transformers for a Hugging Face directory, the OpenAI-compatible client
for an endpoint; vLLM only when named, since it is an alternative engine for the same directories
as transformers and changes answers). The review, the references, the readiness check and the LLM
judge all open their models through `open_target`, so a new engine is one registered kind.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from weighbridge.domain import GenerationParams, ModelRef
from weighbridge.errors import WeighbridgeError
from weighbridge.evals.protocols import Target, TargetKind
from weighbridge.evals.records import TargetOptions
from weighbridge.evals.registry import targets
from weighbridge.targets.hf import is_hf_directory


def open_target(model: ModelRef, options: TargetOptions) -> Target:
    """Open `model` with the named engine or the first registered kind that accepts it."""
    return kind_for(model, options).open(model, options)


def kind_for(model: ModelRef, options: TargetOptions) -> TargetKind:
    """The kind `open_target` would use; callers check with it before they store anything."""
    if options.engine is not None:
        kind = targets.get(options.engine)
        if not kind.accepts(model):
            raise WeighbridgeError(
                f"The {options.engine!r} target cannot open {model.name} (format {model.format!r})",
                f"Kinds that can: {', '.join(accepting(model)) or 'none'}; leave --engine out to use the first",
            )
        return kind
    for name in targets.names_in_order():
        kind = targets.get(name)
        if kind.accepts(model) and not getattr(kind, "explicit_only", False):
            return kind
    raise WeighbridgeError(
        f"No target kind can evaluate {model.name} (format {model.format!r})",
        f"Registered kinds: {', '.join(targets.names())}. Give a GGUF file, a Hugging Face directory "
        "(config.json, *.safetensors, tokenizer files) or a model.yaml endpoint; "
        "`weighbridge convert MODEL.gguf --to hf OUT/` turns a GGUF into such a directory",
    )


def can_open(model: ModelRef) -> bool:
    """Whether some kind would open `model` without being named (nothing is loaded)."""
    try:
        kind_for(model, TargetOptions())
    except WeighbridgeError:
        return False
    return True


def accepting(model: ModelRef) -> list[str]:
    """The registered kinds that say they can open `model`."""
    return [name for name in targets.names() if targets.get(name).accepts(model)]


def _path(model: ModelRef) -> Path:
    if model.path is None:
        raise WeighbridgeError(f"{model.name} has no file to load", "Give the model's file or directory")
    return Path(model.path)


class LlamaCppKind:
    """GGUF files in process through llama.cpp."""

    name = "llamacpp"

    def accepts(self, model: ModelRef) -> bool:
        return model.format == "gguf" and model.path is not None

    def open(self, model: ModelRef, options: TargetOptions) -> Target:
        from weighbridge.targets.llamacpp import REVIEW_BATCH_SIZE, LlamaCppTarget

        return LlamaCppTarget(
            _path(model),
            n_threads=options.n_threads,
            n_ctx=options.n_ctx,
            seed=GenerationParams().seed,
            chat_template=options.chat_template,
            stop=options.stop,
            batch_size=options.batch_size or REVIEW_BATCH_SIZE,
            gpu_layers=options.gpu_layers,
        )


class HFKind:
    """Hugging Face directories (config.json + safetensors) through transformers."""

    name = "hf"

    def accepts(self, model: ModelRef) -> bool:
        # Safetensors weights only: a directory of pickles is inspected, never loaded.
        return model.format == "hf" and model.path is not None and is_hf_directory(Path(model.path))

    def open(self, model: ModelRef, options: TargetOptions) -> Target:
        from weighbridge.targets.hf import REVIEW_BATCH_SIZE, HFTarget

        return HFTarget(
            _path(model),
            name=model.name,
            n_threads=options.n_threads,
            batch_size=options.batch_size or REVIEW_BATCH_SIZE,
            device=options.device,
            dtype=options.dtype,
            chat_template=options.chat_template,
            stop=options.stop,
        )


class OpenAIKind:
    """OpenAI-compatible endpoints (llama-server, vLLM's server, a hosted API)."""

    name = "openai"

    def accepts(self, model: ModelRef) -> bool:
        return model.format == "endpoint" and model.endpoint is not None

    def open(self, model: ModelRef, options: TargetOptions) -> Target:
        from weighbridge.targets.openai_compat import OpenAICompatTarget

        assert model.endpoint is not None
        return OpenAICompatTarget(model.endpoint)


@targets.register("llamacpp")
def _llamacpp() -> TargetKind:
    return LlamaCppKind()


@targets.register("hf")
def _hf() -> TargetKind:
    return HFKind()


@targets.register("openai")
def _openai() -> TargetKind:
    return OpenAIKind()


if importlib.util.find_spec("vllm") is not None:  # pragma: no cover - needs a GPU machine with vLLM
    from weighbridge.targets.vllm import VLLMKind

    @targets.register("vllm")
    def _vllm() -> TargetKind:
        return VLLMKind()
