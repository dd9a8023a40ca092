"""How a model is opened (`--engine`, `--device`, `--dtype`, `--gpu-layers`, `--n-ctx` for review
and evaluate) and `weighbridge convert MODEL.gguf --to hf OUT/`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from weighbridge.cliutil import err, friendly_errors, out
from weighbridge.errors import WeighbridgeError
from weighbridge.evals.records import TargetOptions

EngineOption = Annotated[
    str | None,
    typer.Option(
        "--engine",
        help="Target kind to open the model with (llamacpp, hf, openai, vllm where installed). "
        "Default: the first that accepts the model.",
        show_default=False,
    ),
]
DeviceOption = Annotated[
    str, typer.Option("--device", help="Where transformers/vLLM run the model: cpu, cuda or cuda:N.")
]
DtypeOption = Annotated[
    str,
    typer.Option("--dtype", help="Weights dtype for transformers/vLLM: auto, float32, bfloat16, float16."),
]
GpuLayersOption = Annotated[
    int,
    typer.Option(
        "--gpu-layers",
        min=-1,
        help="llama.cpp layers offloaded to the GPU (-1: all; needs a GPU build of llama-cpp-python).",
    ),
]
NCtxOption = Annotated[
    int | None,
    typer.Option(
        "--n-ctx",
        min=16,
        help="llama.cpp context length (default: the model's own, at most 2048).",
        show_default=False,
    ),
]


def target_options(
    threads: int | None, engine: str | None, device: str, dtype: str, gpu_layers: int, n_ctx: int | None
) -> TargetOptions:
    return TargetOptions(
        n_threads=threads, engine=engine, device=device, dtype=dtype, gpu_layers=gpu_layers, n_ctx=n_ctx
    )


def register(app: typer.Typer) -> None:
    @app.command()
    @friendly_errors
    def convert(
        model: Annotated[Path, typer.Argument(help="The .gguf file to convert.")],
        to: Annotated[str, typer.Option("--to", help="Target format (only hf: a Hugging Face directory).")],
        out_dir: Annotated[Path, typer.Argument(help="The directory to write.")],
        dtype: Annotated[str, typer.Option("--dtype", help="float32, bfloat16 or float16.")] = "float32",
        force: Annotated[bool, typer.Option("--force", help="Write into a non-empty directory.")] = False,
    ) -> None:
        """Convert a GGUF into a Hugging Face directory (safetensors + tokenizer with its chat template),
        reviewable through transformers. The weights are the GGUF's, dequantized."""
        from weighbridge.targets.convert import convert_gguf_to_hf

        if to != "hf":
            raise WeighbridgeError(f"Cannot convert to {to!r}", "Use --to hf")
        result = convert_gguf_to_hf(model, out_dir, force=force, dtype=dtype, progress=lambda m: err.print(f"{m} …"))
        out.print(
            f"Wrote {result.out_dir}: {result.parameters:,} parameters ({result.dtype}), "
            f"{result.bytes / 1e6:.0f} MB in {len(result.files)} files, {result.seconds:.0f} s"
        )
