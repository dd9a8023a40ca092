"""GGUF and safetensors headers: metadata read without loading tensors, and parsers that only ever
fail with `WeighbridgeError` (checked by hand-made corruptions and by hypothesis fuzzing)."""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import struct
from collections.abc import Callable
from pathlib import Path

import gguf
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.numpy import save_file

from weighbridge.errors import WeighbridgeError
from weighbridge.inspection.formats import MalformedFile
from weighbridge.inspection.gguf_header import parse_gguf_header, read_gguf_header
from weighbridge.inspection.inspect import inspect_path
from weighbridge.inspection.metadata import describe_model
from weighbridge.inspection.safetensors_header import parse_safetensors_header, read_safetensors_header

# WEIGHBRIDGE_FUZZ_EXAMPLES=20000 runs a longer campaign; the default keeps the fuzz tests under ~10 s.
FUZZ_EXAMPLES = int(os.environ.get("WEIGHBRIDGE_FUZZ_EXAMPLES", "300"))
FUZZ = settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ---------- builders ----------


def small_gguf_bytes(tmp: Path) -> bytes:
    path = tmp / "small.gguf"
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_block_count(2)
    w.add_context_length(256)
    w.add_embedding_length(32)
    w.add_head_count(4)
    w.add_head_count_kv(2)
    w.add_license("apache-2.0")
    w.add_name("tiny test model")
    w.add_chat_template("{{ messages }}")
    w.add_token_list(["<s>", "</s>", "a", "b"])
    w.add_tensor("token_embd.weight", np.zeros((4, 32), np.float32))
    w.add_tensor("blk.0.attn_q.weight", np.ones((32, 32), np.float16))
    w.add_tensor("output_norm.weight", np.ones(32, np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path.read_bytes()


def small_safetensors(path: Path) -> dict[str, np.ndarray]:
    tensors = {
        "model.embed_tokens.weight": np.zeros((100, 16), np.float32),
        "model.layers.0.mlp.up_proj.weight": np.ones((48, 16), np.float16),
        "model.layers.0.input_layernorm.weight": np.ones(16, np.float32),
        "lm_head.weight": np.zeros((100, 16), np.int8),
    }
    save_file(tensors, str(path), metadata={"format": "pt"})
    return tensors


def safetensors_bytes(header: object, data: bytes = b"", raw_header: bytes | None = None) -> bytes:
    body = raw_header if raw_header is not None else json.dumps(header).encode()
    return struct.pack("<Q", len(body)) + body + data


def parse_st(data: bytes) -> object:
    return parse_safetensors_header(io.BytesIO(data), len(data))


@pytest.fixture(scope="module")
def gguf_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return small_gguf_bytes(tmp_path_factory.mktemp("gguf"))


@pytest.fixture(scope="module")
def st_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("st") / "m.safetensors"
    small_safetensors(path)
    return path.read_bytes()


# ---------- metadata ----------


def test_default_model_parameters_equal_the_sum_of_tensor_shapes(default_model_path: Path) -> None:
    meta = describe_model(default_model_path)
    reader = gguf.GGUFReader(default_model_path)  # independent parse (slow: ~6 s on 2 cores)
    assert meta.parameters == sum(math.prod(int(d) for d in t.shape) for t in reader.tensors)
    assert meta.parameters == 134_515_008  # ≈134.5M, not derived from the Q4_1 byte sizes
    assert meta.tensor_count == len(reader.tensors) == 272
    assert meta.architecture == reader.fields["general.architecture"].contents() == "llama"
    assert (meta.layers, meta.hidden_size, meta.heads, meta.kv_heads) == (30, 576, 9, 3)
    assert (meta.vocab_size, meta.context_length) == (49152, 8192)
    assert meta.quantization == "MOSTLY_Q4_1"
    assert meta.chat_template == reader.fields["tokenizer.chat_template"].contents()
    assert meta.licence == "apache-2.0"
    ours = read_gguf_header(default_model_path)
    for key, field in reader.fields.items():
        if key.startswith("GGUF.") or len(field.data) > 64:
            continue
        assert ours.fields[key] == pytest.approx(field.contents()), key
    offsets = {t.name: t.data_offset for t in reader.tensors}
    assert {t.name: ours.data_start + t.offset for t in ours.tensors} == offsets


def test_small_gguf_metadata(tmp_path: Path) -> None:
    small_gguf_bytes(tmp_path)
    meta = describe_model(tmp_path / "small.gguf")
    assert meta.parameters == 4 * 32 + 32 * 32 + 32
    assert (meta.layers, meta.heads, meta.kv_heads, meta.context_length) == (2, 4, 2, 256)
    assert meta.vocab_size == 4 and meta.name == "tiny test model" and meta.chat_template == "{{ messages }}"


def test_safetensors_file_parameters_are_exact(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    tensors = small_safetensors(path)
    meta = describe_model(path)
    assert meta.parameters == sum(t.size for t in tensors.values()) == 100 * 16 + 48 * 16 + 16 + 100 * 16
    assert meta.format == "safetensors" and meta.tensor_count == 4
    assert meta.quantization == "F32"  # the dtype holding most elements
    assert meta.raw["safetensors_metadata"] == [{"format": "pt"}]


def test_hf_directory_sums_shards_and_reads_config(tmp_path: Path) -> None:
    save_file({"a.weight": np.zeros((10, 4), np.float32)}, str(tmp_path / "model-00001-of-00002.safetensors"))
    save_file({"b.weight": np.zeros((3, 7), np.float16)}, str(tmp_path / "model-00002-of-00002.safetensors"))
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "num_hidden_layers": 2,
        "hidden_size": 4,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "vocab_size": 10,
        "max_position_embeddings": 512,
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"chat_template": "{{ x }}"}))
    (tmp_path / "README.md").write_text("---\nlicense: mit\n---\n# Model\n")
    meta = describe_model(tmp_path)
    assert meta.parameters == 40 + 21 and meta.tensor_count == 2
    assert meta.architecture == "LlamaForCausalLM" and meta.format == "hf"
    assert (meta.layers, meta.hidden_size, meta.heads, meta.kv_heads) == (2, 4, 2, 1)
    assert (meta.vocab_size, meta.context_length, meta.chat_template, meta.licence) == (10, 512, "{{ x }}", "mit")


# ---------- hand-made corruptions ----------


def test_gguf_corruptions_are_clear_errors(gguf_bytes: bytes) -> None:
    def kind(data: bytes) -> str:
        with pytest.raises(MalformedFile) as info:
            parse_gguf_header(data)
        return info.value.kind

    assert kind(b"GGML" + gguf_bytes[4:]) == "gguf.bad_magic"
    assert kind(gguf_bytes[:4] + struct.pack("<I", 99) + gguf_bytes[8:]) == "gguf.unsupported_version"
    assert kind(gguf_bytes[:8] + struct.pack("<Q", 2**62) + gguf_bytes[16:]) == "gguf.count_too_large"
    assert kind(gguf_bytes[:16] + struct.pack("<Q", 2**63) + gguf_bytes[24:]) == "gguf.count_too_large"
    assert kind(gguf_bytes[:24] + struct.pack("<Q", 2**40) + gguf_bytes[32:]) == "gguf.string_too_long"
    assert kind(gguf_bytes[:-1]) == "gguf.offset_past_eof"
    assert kind(gguf_bytes[:200]).startswith("gguf.")


def test_gguf_offset_past_eof_is_a_finding(tmp_path: Path, gguf_bytes: bytes) -> None:
    path = tmp_path / "cut.gguf"
    path.write_bytes(gguf_bytes[: len(gguf_bytes) - 100])
    findings = inspect_path(path).findings
    assert [(f.kind, f.severity) for f in findings if f.kind.startswith("gguf.")] == [("gguf.offset_past_eof", "high")]


@pytest.mark.parametrize(
    ("header", "data", "kind"),
    [
        ({"t": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 4, "safetensors.offset_past_eof"),
        ({"t": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8, "safetensors.size_mismatch"),
        ({"t": {"dtype": "Q9", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 8, "safetensors.unknown_dtype"),
        ({"t": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}, b"\0" * 8, "safetensors.bad_shape"),
        ({"t": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}}, b"\0" * 8, "safetensors.bad_offsets"),
        (
            {
                "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]},
            },
            b"\0" * 12,
            "safetensors.overlap",
        ),
        ({"__metadata__": {"k": 1}}, b"", "safetensors.bad_metadata"),
        ([1, 2], b"", "safetensors.invalid_json"),
    ],
)
def test_safetensors_corruptions(header: object, data: bytes, kind: str) -> None:
    with pytest.raises(MalformedFile) as info:
        parse_st(safetensors_bytes(header, data))
    assert info.value.kind == kind


def test_safetensors_length_limits() -> None:
    with pytest.raises(MalformedFile, match="limit 100 MB"):
        parse_st(struct.pack("<Q", 200_000_000) + b"{}")
    with pytest.raises(MalformedFile, match="file has"):
        parse_st(struct.pack("<Q", 50) + b"{}")
    with pytest.raises(MalformedFile, match="not valid JSON"):
        parse_st(safetensors_bytes(None, raw_header=b"{not json"))
    with pytest.raises(MalformedFile, match="duplicate"):
        parse_st(safetensors_bytes(None, raw_header=b'{"__metadata__": {}, "__metadata__": {}}'))


def test_safetensors_hidden_bytes_are_a_finding(tmp_path: Path) -> None:
    header = {"t": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}
    path = tmp_path / "m.safetensors"
    path.write_bytes(safetensors_bytes(header, b"\0" * 4 + b"hidden payload"))
    assert read_safetensors_header(path).uncovered_bytes == 14
    kinds = {f.kind for f in inspect_path(path).findings}
    assert "safetensors.uncovered_bytes" in kinds


# ---------- fuzzing: only WeighbridgeError, never another exception ----------


def _only_our_error(parse: Callable[[bytes], object], data: bytes) -> None:
    with contextlib.suppress(WeighbridgeError):
        parse(data)


@FUZZ
@given(st.binary(max_size=512))
def test_fuzz_gguf_random_bytes(data: bytes) -> None:
    _only_our_error(parse_gguf_header, b"GGUF" + data)
    _only_our_error(parse_gguf_header, data)


@FUZZ
@given(st.data())
def test_fuzz_gguf_mutations(gguf_bytes: bytes, data: st.DataObject) -> None:
    buf = bytearray(gguf_bytes)
    for _ in range(data.draw(st.integers(1, 8))):
        pos = data.draw(st.integers(0, min(len(buf) - 1, 1200)))  # the header region, mostly
        buf[pos] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(buf)))
    _only_our_error(parse_gguf_header, bytes(buf[:cut]) if data.draw(st.booleans()) else bytes(buf))


@FUZZ
@given(st.binary(max_size=512))
def test_fuzz_safetensors_random_bytes(data: bytes) -> None:
    _only_our_error(parse_st, data)
    _only_our_error(parse_st, struct.pack("<Q", len(data)) + data)


@FUZZ
@given(st.data())
def test_fuzz_safetensors_mutations(st_bytes: bytes, data: st.DataObject) -> None:
    buf = bytearray(st_bytes)
    n = struct.unpack("<Q", st_bytes[:8])[0]
    for _ in range(data.draw(st.integers(1, 6))):
        pos = data.draw(st.integers(0, 8 + n - 1))
        buf[pos] = data.draw(st.integers(0, 255))
    _only_our_error(parse_st, bytes(buf))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=6,
)
tensor_entries = st.fixed_dictionaries(
    {
        "dtype": st.sampled_from(["F32", "F16", "BF16", "I8", "F4", "BOOL", "X", ""]) | json_values,
        "shape": st.lists(st.integers(-2, 2**40), max_size=5) | json_values,
        "data_offsets": st.lists(st.integers(-2, 2**40), min_size=2, max_size=2) | json_values,
    }
)


@settings(max_examples=max(100, FUZZ_EXAMPLES // 3), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.text(max_size=10), tensor_entries | json_values, max_size=5), st.integers(0, 64))
def test_fuzz_safetensors_structured_headers(header: dict[str, object], data_len: int) -> None:
    _only_our_error(parse_st, safetensors_bytes(header, b"\0" * data_len))


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_fuzz_whole_inspection_of_mutated_files(
    gguf_bytes: bytes, st_bytes: bytes, tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    """End to end: a damaged file is findings, and `inspect_path` itself never raises."""
    source, name = data.draw(st.sampled_from([(gguf_bytes, "m.gguf"), (st_bytes, "m.safetensors")]))
    buf = bytearray(source)
    for _ in range(data.draw(st.integers(1, 6))):
        buf[data.draw(st.integers(0, min(len(buf) - 1, 1200)))] = data.draw(st.integers(0, 255))
    path = tmp_path_factory.mktemp("fuzz") / name
    path.write_bytes(bytes(buf))
    result = inspect_path(path)
    assert result.files[0].bytes == len(buf)
