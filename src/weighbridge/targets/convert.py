"""GGUF → Hugging Face directory, so a GGUF model can be reviewed through transformers as well.

transformers reads a GGUF itself (`gguf_file=`, through the `gguf` package, dequantizing every
tensor) but refuses to `save_pretrained` a model it loaded that way: the loaded model carries a
GGUF `quantization_config`. So a plain model is built from the same config without it, the
dequantized state dict loaded into it, and that saved as safetensors beside the tokenizer (whose
chat template comes from the GGUF's `tokenizer.chat_template`).

What the result is: the GGUF's weights after dequantization (a Q4 model does not become its
original full-precision release), in the dtype asked for. Answers can differ from llama.cpp's on
the GGUF at near ties: different kernels, and transformers' own tokenizer and template rendering.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from weighbridge.errors import WeighbridgeError

GGUF_MAGIC = b"GGUF"
_DTYPES = ("float32", "bfloat16", "float16")


@dataclass(frozen=True)
class Converted:
    out_dir: Path
    files: tuple[str, ...]
    bytes: int
    parameters: int
    dtype: str
    seconds: float


def convert_gguf_to_hf(
    gguf: Path,
    out_dir: Path,
    *,
    force: bool = False,
    dtype: str = "float32",
    progress: Callable[[str], None] = lambda _: None,
) -> Converted:
    """Write `gguf` as a Hugging Face directory (config.json, model.safetensors, tokenizer files).

    Refuses a non-empty `out_dir` unless `force` (then the files it writes replace theirs; nothing
    else there is removed). Float32 by default: the dequantized values are exact in it, and it is
    the CPU target's default dtype.
    """
    _check_input(gguf)
    if dtype not in _DTYPES:
        raise WeighbridgeError(f"Unknown dtype {dtype!r}", f"Choose one of: {', '.join(_DTYPES)}")
    if out_dir.exists() and not out_dir.is_dir():
        raise WeighbridgeError(f"{out_dir} exists and is not a directory", "Give a directory to write into")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not force:
        raise WeighbridgeError(f"{out_dir} is not empty", "Give an empty or new directory, or --force to overwrite")
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    transformers.utils.logging.enable_progress_bar()  # type: ignore[no-untyped-call]  # its bars are the progress
    start = time.perf_counter()
    folder, name = str(gguf.parent), gguf.name
    try:
        with _one_reader():
            progress(f"Reading the tokenizer and chat template of {name}")
            tokenizer: Any = AutoTokenizer.from_pretrained(folder, gguf_file=name, local_files_only=True)
            progress(f"Dequantizing the weights of {name}")
            loaded: Any = AutoModelForCausalLM.from_pretrained(
                folder, gguf_file=name, local_files_only=True, dtype=torch.float32
            )
    except (OSError, ValueError, KeyError, RuntimeError, NotImplementedError) as exc:
        raise WeighbridgeError(
            f"transformers could not read {gguf} ({exc})",
            "Check that the GGUF is complete and of an architecture transformers supports "
            "(llama, mistral, qwen2, gemma3, ...): see transformers' GGUF documentation",
        ) from exc
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # save_pretrained refuses a model that carries it
    progress("Building a plain model from the config")
    plain: Any = AutoModelForCausalLM.from_config(config, dtype=getattr(torch, dtype))  # type: ignore[no-untyped-call]
    state = loaded.state_dict()
    missing, unexpected = plain.load_state_dict(state, strict=False)
    # Tied embeddings (lm_head = embed_tokens) are absent from a GGUF and come back by the tie.
    missing = [k for k in missing if not (k == "lm_head.weight" and getattr(config, "tie_word_embeddings", False))]
    if missing or unexpected:
        raise WeighbridgeError(
            f"The weights read from {name} do not fit the model built from its config "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]})",
            "This architecture's GGUF mapping in transformers is incomplete; convert from the original release",
        )
    del loaded, state
    if tokenizer.chat_template:
        plain.generation_config.eos_token_id = _eos_of(plain, tokenizer)
    progress(f"Writing safetensors and tokenizer files to {out_dir}")
    out_dir.mkdir(parents=True, exist_ok=True)
    plain.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    files = tuple(sorted(p.name for p in out_dir.iterdir() if p.is_file()))
    return Converted(
        out_dir=out_dir,
        files=files,
        bytes=sum((out_dir / f).stat().st_size for f in files),
        parameters=sum(p.numel() for p in plain.parameters()),
        dtype=dtype,
        seconds=time.perf_counter() - start,
    )


@contextmanager
def _one_reader() -> Iterator[None]:
    """Parse the GGUF once, not three times: transformers opens a new `gguf.GGUFReader` for the
    tokenizer, the config and the weights, and gguf-py builds every field of a 49k-token vocabulary
    in Python each time (about 18 of SmolLM2's 70 s per parse on 2 busy cores). The reader only
    reads its memory map, so one instance serves all three loads."""
    import gguf

    original = gguf.GGUFReader
    readers: dict[tuple[str, str], Any] = {}

    def shared(path: Any, mode: Any = "r") -> Any:
        key = (str(path), str(mode))
        if key not in readers:
            readers[key] = original(path, mode)
        return readers[key]

    gguf.GGUFReader = shared  # type: ignore[assignment,misc]
    try:
        yield
    finally:
        gguf.GGUFReader = original  # type: ignore[misc]


def _check_input(gguf: Path) -> None:
    if not gguf.is_file():
        raise WeighbridgeError(f"No such file: {gguf}", "Give the path of a .gguf model file")
    with gguf.open("rb") as fh:
        magic = fh.read(4)
    if magic != GGUF_MAGIC:
        raise WeighbridgeError(
            f"{gguf} is not a GGUF file (it does not start with the GGUF magic bytes)",
            "Give a .gguf model file; a Hugging Face directory needs no conversion",
        )


def _eos_of(model: Any, tokenizer: Any) -> Any:
    """The ids that end an answer: the config's, plus the tokenizer's EOS (a chat model's end of
    turn) when the config names another, so `generate` stops where llama.cpp stops."""
    configured = model.generation_config.eos_token_id
    ids = configured if isinstance(configured, list) else [configured]
    ids = [i for i in ids if i is not None]
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    return ids[0] if len(ids) == 1 else ids
