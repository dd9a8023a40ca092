"""Layer-by-layer diff against a declared base: safetensors, HF shard directories and GGUF."""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path

import gguf
import numpy as np
import pytest
from safetensors.numpy import save_file

from weighbridge.inspection.diff import _ranges, diff_findings, diff_layers

CHANGED = ("model.layers.1.self_attn.v_proj.weight", "model.layers.3.mlp.down_proj.weight")


def base_tensors() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    tensors: dict[str, np.ndarray] = {"model.embed_tokens.weight": rng.standard_normal((50, 16)).astype(np.float16)}
    for i in range(4):
        tensors[f"model.layers.{i}.self_attn.q_proj.weight"] = rng.standard_normal((16, 16)).astype(np.float32)
        tensors[f"model.layers.{i}.self_attn.v_proj.weight"] = rng.standard_normal((16, 16)).astype(np.float32)
        tensors[f"model.layers.{i}.mlp.down_proj.weight"] = rng.standard_normal((16, 32)).astype(np.float32)
        tensors[f"model.layers.{i}.input_layernorm.weight"] = np.ones(16, dtype=np.float32)
    return tensors


def fine_tuned(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = dict(tensors)
    out[CHANGED[0]] = tensors[CHANGED[0]] * np.float32(1.5)  # relative change exactly 0.5
    out[CHANGED[1]] = tensors[CHANGED[1]] + np.float32(0.01)
    return out


@pytest.fixture()
def pair(tmp_path: Path) -> tuple[Path, Path]:
    tensors = base_tensors()
    save_file(tensors, str(tmp_path / "base.safetensors"))
    save_file(fine_tuned(tensors), str(tmp_path / "tuned.safetensors"))
    return tmp_path / "tuned.safetensors", tmp_path / "base.safetensors"


def test_safetensors_diff_names_exactly_the_changed_tensors(pair: tuple[Path, Path]) -> None:
    diff = diff_layers(*pair)
    assert diff.aligned and len(diff.compared) == 17
    assert sorted(c.name for c in diff.changed) == sorted(CHANGED)
    assert diff.changed[0].name == CHANGED[0]
    assert diff.changed[0].relative_change == pytest.approx(0.5, rel=1e-6)
    assert diff.changed_layers == (1, 3)
    [finding] = diff_findings(*pair)
    assert (finding.kind, finding.severity) == ("diff.changed_layers", "low")
    assert finding.message.startswith("2 of 17 compared tensors changed")
    assert f"largest {CHANGED[0]} 0.5" in finding.message and "blocks changed: 1, 3" in finding.message


def test_identical_models_report_no_change(pair: tuple[Path, Path]) -> None:
    _, base = pair
    [finding] = diff_findings(base, base)
    assert (finding.kind, finding.severity) == ("diff.changed_layers", "info")


def test_hf_directories_of_shards(tmp_path: Path) -> None:
    tensors, tuned = base_tensors(), fine_tuned(base_tensors())
    for name, data in (("base", tensors), ("tuned", tuned)):
        folder = tmp_path / name
        folder.mkdir()
        names = sorted(data)
        save_file({n: data[n] for n in names[:8]}, str(folder / "model-00001-of-00002.safetensors"))
        save_file({n: data[n] for n in names[8:]}, str(folder / "model-00002-of-00002.safetensors"))
        (folder / "config.json").write_text("{}")
    diff = diff_layers(tmp_path / "tuned", tmp_path / "base")
    assert sorted(c.name for c in diff.changed) == sorted(CHANGED)


def test_missing_extra_and_reshaped_tensors_are_an_architecture_mismatch(tmp_path: Path) -> None:
    tensors = base_tensors()
    other = dict(tensors)
    del other["model.layers.0.input_layernorm.weight"]
    other["lora_A.weight"] = np.zeros((4, 16), dtype=np.float32)
    other["model.embed_tokens.weight"] = np.zeros((60, 16), dtype=np.float16)  # vocabulary extended
    save_file(tensors, str(tmp_path / "base.safetensors"))
    save_file(other, str(tmp_path / "model.safetensors"))
    diff = diff_layers(tmp_path / "model.safetensors", tmp_path / "base.safetensors")
    assert diff.only_in_model == ("lora_A.weight",)
    assert diff.only_in_base == ("model.layers.0.input_layernorm.weight",)
    assert diff.shape_mismatches == (("model.embed_tokens.weight", (60, 16), (50, 16)),)
    findings = {f.kind: f for f in diff_findings(tmp_path / "model.safetensors", tmp_path / "base.safetensors")}
    mismatch = findings["diff.architecture_mismatch"]
    assert mismatch.severity == "high"
    assert "lora_A.weight" in mismatch.message and "[60, 16] vs [50, 16]" in mismatch.message
    assert findings["diff.changed_layers"].severity == "info"  # the tensors that line up are unchanged


def write_bf16_safetensors(path: Path, tensors: dict[str, np.ndarray]) -> None:
    """numpy has no bfloat16, so write the format by hand: truncate float32 to its top 16 bits."""
    header: dict[str, object] = {}
    blobs: list[bytes] = []
    offset = 0
    for name, value in tensors.items():
        raw = (value.astype(np.float32).view(np.uint32) >> 16).astype("<u2").tobytes()
        header[name] = {"dtype": "BF16", "shape": list(value.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def test_bfloat16_tensors_are_compared(tmp_path: Path) -> None:
    tensors = {k: v.astype(np.float32) for k, v in base_tensors().items()}
    write_bf16_safetensors(tmp_path / "base.safetensors", tensors)
    write_bf16_safetensors(tmp_path / "tuned.safetensors", fine_tuned(tensors))
    diff = diff_layers(tmp_path / "tuned.safetensors", tmp_path / "base.safetensors", tolerance=1e-3)
    assert sorted(c.name for c in diff.changed) == sorted(CHANGED)
    assert diff.changed[0].relative_change == pytest.approx(0.5, rel=1e-2)


def write_gguf(path: Path, tensors: dict[str, np.ndarray]) -> None:
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(2)
    for name, value in tensors.items():
        if value.ndim == 2:
            writer.add_tensor(
                name,
                gguf.quants.quantize(value, gguf.GGMLQuantizationType.Q8_0),
                raw_dtype=gguf.GGMLQuantizationType.Q8_0,
            )
        else:
            writer.add_tensor(name, value)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def test_gguf_diff_against_a_modified_copy(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    base = {
        "token_embd.weight": rng.standard_normal((64, 32)).astype(np.float32),
        "blk.0.attn_v.weight": rng.standard_normal((32, 32)).astype(np.float32),
        "blk.1.attn_v.weight": rng.standard_normal((32, 32)).astype(np.float32),
        "blk.1.attn_norm.weight": np.ones(32, dtype=np.float32),
    }
    tuned = dict(base)
    tuned["blk.1.attn_v.weight"] = base["blk.1.attn_v.weight"] + rng.standard_normal((32, 32)).astype(np.float32)
    write_gguf(tmp_path / "base.gguf", base)
    write_gguf(tmp_path / "tuned.gguf", tuned)
    diff = diff_layers(tmp_path / "tuned.gguf", tmp_path / "base.gguf")
    assert diff.format == "gguf" and diff.aligned
    assert [c.name for c in diff.changed] == ["blk.1.attn_v.weight"]
    assert 0.8 < diff.changed[0].relative_change < 1.6  # ≈ √2 ... 1 for unit-variance noise, after Q8_0
    assert dict((c.name, c.shape) for c in diff.compared)["token_embd.weight"] == (64, 32)
    [finding] = diff_findings(tmp_path / "tuned.gguf", tmp_path / "base.gguf")
    assert "1 of 4 compared tensors changed" in finding.message and "blocks changed: 1" in finding.message


def test_mixed_formats_and_missing_base_are_findings_not_crashes(tmp_path: Path, pair: tuple[Path, Path]) -> None:
    (tmp_path / "x.gguf").write_bytes(b"GGUF" + b"\0" * 28)
    [finding] = diff_findings(pair[0], tmp_path / "x.gguf")
    assert finding.kind == "diff.unavailable" and "same format" in finding.message
    [missing] = diff_findings(pair[0], tmp_path / "nope")
    assert missing.kind == "diff.unavailable" and "No such file" in missing.message


def test_ranges() -> None:
    assert _ranges((0, 1, 2, 5, 7, 8)) == "0-2, 5, 7-8"


@pytest.mark.slow
def test_default_model_against_itself_has_no_changes(default_model_path: Path) -> None:
    started = time.perf_counter()
    diff = diff_layers(default_model_path, default_model_path)
    assert diff.aligned and len(diff.compared) == 272 and diff.changed == ()
    assert dict((c.name, c.shape) for c in diff.compared)["token_embd.weight"] == (49152, 576)
    assert time.perf_counter() - started < 60
