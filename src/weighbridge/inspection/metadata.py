"""What a model's files say about it, read from headers only: no tensor is loaded or unpickled.

`describe_model` gives one `ModelMetadata` for a GGUF file, a safetensors file or a Hugging Face
directory. Card checks, the compute estimate and the secrets scan all consume this record, so it
is plain data and lives here, beside the only code that fills it in.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

import yaml
from gguf import LlamaFileType

from weighbridge.errors import WeighbridgeError
from weighbridge.inspection.formats import detect_format
from weighbridge.inspection.gguf_header import GGUFHeader, read_gguf_header
from weighbridge.inspection.safetensors_header import SafetensorsHeader, read_safetensors_header

MAX_CONFIG_BYTES: Final = 16 * 1024 * 1024


@dataclass(frozen=True)
class ModelMetadata:
    """Facts read from a model's headers.

    Every field but `format` may be unknown (`None`), because a header need not carry it.
    `parameters` is exact: the sum over tensor shapes (for GGUF, the logical shapes, never the
    quantized byte sizes). `quantization` is the file type a GGUF declares, else the dominant
    tensor dtype. `raw` keeps selected original metadata (small scalar values and strings) so
    later checks can cite what the file actually said.
    """

    format: str
    architecture: str | None = None
    layers: int | None = None
    hidden_size: int | None = None
    heads: int | None = None
    kv_heads: int | None = None
    vocab_size: int | None = None
    context_length: int | None = None
    quantization: str | None = None
    tensor_count: int | None = None
    parameters: int | None = None
    chat_template: str | None = None
    licence: str | None = None
    name: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)


def describe_model(path: Path) -> ModelMetadata:
    """Describe a GGUF file, a safetensors file, or a Hugging Face directory from headers alone.

    Raises `MalformedFile` (a `WeighbridgeError`) when a header is broken, and `WeighbridgeError`
    when `path` is none of the supported layouts.
    """
    if path.is_dir():
        return _describe_dir(path)
    fmt = detect_format(path)
    if fmt == "gguf":
        return _from_gguf(read_gguf_header(path))
    if fmt == "safetensors":
        return _from_safetensors([read_safetensors_header(path)], {}, name=path.stem)
    raise WeighbridgeError(
        f"{path.name} is {fmt}, not a GGUF or safetensors model", "Give a .gguf, .safetensors or HF directory"
    )


def _describe_dir(root: Path) -> ModelMetadata:
    shards = sorted(p for p in root.glob("*.safetensors") if p.is_file() and not p.is_symlink())
    config = _read_json(root / "config.json")
    if shards or config:
        headers = [read_safetensors_header(p) for p in shards]
        meta = _from_safetensors(headers, config, name=root.name)
        tok = _read_json(root / "tokenizer_config.json")
        template = tok.get("chat_template")
        jinja = root / "chat_template.jinja"
        if template is None and jinja.is_file() and not jinja.is_symlink():
            template = jinja.read_text(encoding="utf-8", errors="replace")
        return replace(
            meta,
            format="hf" if config else "safetensors",
            chat_template=template if isinstance(template, str) else None,
            licence=_card_licence(root / "README.md"),
        )
    ggufs = sorted(p for p in root.glob("*.gguf") if p.is_file() and not p.is_symlink())
    if len(ggufs) == 1:
        return _from_gguf(read_gguf_header(ggufs[0]))
    raise WeighbridgeError(
        f"{root} holds no config.json or *.safetensors and {len(ggufs)} .gguf files",
        "Give a directory with config.json and safetensors shards, or one GGUF file",
    )


def _from_gguf(h: GGUFHeader) -> ModelMetadata:
    f = h.fields
    arch = _str(f.get("general.architecture"))
    p = f"{arch}." if arch else "\0"  # no architecture: no architecture-scoped key can match
    file_type = _int(f.get("general.file_type"))
    try:
        quant = LlamaFileType(file_type).name if file_type is not None else None
    except ValueError:
        quant = f"file_type {file_type}"
    vocab = _int(f.get(p + "vocab_size")) or h.array_lengths.get("tokenizer.ggml.tokens")
    return ModelMetadata(
        format="gguf",
        architecture=arch,
        layers=_int(f.get(p + "block_count")),
        hidden_size=_int(f.get(p + "embedding_length")),
        heads=_int(f.get(p + "attention.head_count")),
        kv_heads=_int(f.get(p + "attention.head_count_kv")),
        vocab_size=vocab,
        context_length=_int(f.get(p + "context_length")),
        quantization=quant or _dominant((t.type_name, t.elements) for t in h.tensors),
        tensor_count=len(h.tensors),
        parameters=sum(t.elements for t in h.tensors),
        chat_template=_str(f.get("tokenizer.chat_template")),
        licence=_str(f.get("general.license")),
        name=_str(f.get("general.name")),
        raw={
            **{k: v for k, v in f.items() if k != "tokenizer.chat_template"},
            "tensor_types": dict(Counter(t.type_name for t in h.tensors)),
            "dominant_tensor_type": _dominant((t.type_name, t.elements) for t in h.tensors),
            "gguf_version": h.version,
        },
    )


def _from_safetensors(headers: list[SafetensorsHeader], config: dict[str, Any], name: str) -> ModelMetadata:
    tensors = [t for h in headers for t in h.tensors]
    dtype = _dominant((t.dtype, t.elements) for t in tensors)
    quant_cfg = config.get("quantization_config")
    quant = quant_cfg.get("quant_method") if isinstance(quant_cfg, dict) else None
    archs = config.get("architectures")
    text_cfg = config.get("text_config")  # multimodal configs nest the language model's numbers
    cfg: dict[str, Any] = {**(text_cfg if isinstance(text_cfg, dict) else {}), **config}

    def pick(*keys: str) -> int | None:
        return next((v for k in keys if (v := _int(cfg.get(k))) is not None), None)

    return ModelMetadata(
        format="safetensors",
        architecture=(archs[0] if isinstance(archs, list) and archs and isinstance(archs[0], str) else None)
        or _str(config.get("model_type")),
        layers=pick("num_hidden_layers", "n_layer", "num_layers", "n_layers"),
        hidden_size=pick("hidden_size", "n_embd", "d_model", "dim"),
        heads=pick("num_attention_heads", "n_head", "num_heads", "n_heads"),
        kv_heads=pick("num_key_value_heads", "n_kv_heads", "num_kv_heads"),
        vocab_size=pick("vocab_size"),
        context_length=pick("max_position_embeddings", "n_positions", "n_ctx", "max_seq_len", "seq_length"),
        quantization=_str(quant) or dtype,
        tensor_count=len(tensors),
        parameters=sum(t.elements for t in tensors) if headers else None,
        name=_str(config.get("_name_or_path")) or name,
        raw={
            "config": {k: v for k, v in config.items() if isinstance(v, str | int | float | bool) or v is None},
            "safetensors_metadata": [h.metadata for h in headers],
            "tensor_dtypes": dict(Counter(t.dtype for t in tensors)),
            "shards": len(headers),
        },
    )


def _dominant(pairs: Iterable[tuple[str, int]]) -> str | None:
    """The type holding the most elements (what "the quantization" of a mixed file means in practice)."""
    totals: Counter[str] = Counter()
    for kind, n in pairs:
        totals[kind] += n
    return totals.most_common(1)[0][0] if totals else None


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file() or path.is_symlink() or path.stat().st_size > MAX_CONFIG_BYTES:
        return {}
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}


def _card_licence(readme: Path) -> str | None:
    """The `license:` of a Hugging Face README's YAML front matter, if any."""
    if not readme.is_file() or readme.is_symlink() or readme.stat().st_size > MAX_CONFIG_BYTES:
        return None
    text = readme.read_text(encoding="utf-8", errors="replace")
    if not text.startswith("---"):
        return None
    end = text.find("\n---", 3)
    try:
        front = yaml.safe_load(text[3:end]) if end > 0 else None
    except yaml.YAMLError:
        return None
    return _str(front.get("license")) if isinstance(front, dict) else None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
