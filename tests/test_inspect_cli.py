"""`weighbridge inspect`: the JSON contract, exit codes, and a hostile directory scanned safely."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file
from typer.testing import CliRunner

from tests.hostile_corpus import build_corpus
from weighbridge.cli import app
from weighbridge.inspection.inspect import inspect_path

runner = CliRunner()
FINDING_KEYS = {"kind", "severity", "file", "message", "location", "evidence"}
SEVERITIES = {"info", "low", "medium", "high", "critical"}
CARD = """---
license: apache-2.0
---
# Tiny model
## Intended use
Testing.
## Training data
Trained on 2T tokens of public text.
"""


def sha256sum(path: Path) -> str:
    out = subprocess.run(["sha256sum", str(path)], capture_output=True, text=True, check=True).stdout
    return out.split()[0]


def check_contract(data: dict[str, object]) -> None:
    assert set(data) == {"files", "parameters", "architecture", "findings", "metadata"}
    assert isinstance(data["files"], list) and isinstance(data["findings"], list)
    for f in data["files"]:
        assert set(f) == {"path", "sha256", "bytes", "format"}
    for f in data["findings"]:
        assert set(f) == FINDING_KEYS and f["severity"] in SEVERITIES


@pytest.fixture
def hostile_dir(tmp_path: Path) -> Path:
    """An HF-style directory: config, a safetensors shard, a hostile pickle, a link out, a FIFO."""
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"architectures": ["TinyForCausalLM"], "num_hidden_layers": 1}))
    save_file({"w": np.zeros((3, 4), np.float32)}, str(model / "model.safetensors"))
    corpus = build_corpus(tmp_path / "corpus", tmp_path / "markers")
    pickled = next(f for f in corpus if f.name == "os_system.pkl")
    (model / "pytorch_model.bin").write_bytes(pickled.path.read_bytes())
    (tmp_path / "secret.txt").write_text("reviewer's private file")
    (model / "escape.txt").symlink_to(tmp_path / "secret.txt")
    os.mkfifo(model / "pipe")
    return model


def test_default_model_json(default_model_path: Path) -> None:
    result = runner.invoke(app, ["inspect", str(default_model_path), "--json", "--tokens", "2e12"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    check_contract(data)
    assert data["parameters"] == 134_515_008 and data["architecture"] == "llama"
    assert data["files"] == [
        {
            "path": default_model_path.name,
            "sha256": sha256sum(default_model_path),
            "bytes": default_model_path.stat().st_size,
            "format": "gguf",
        }
    ]
    assert not [f for f in data["findings"] if f["severity"] in ("high", "critical")]
    compute = [f for f in data["findings"] if f["kind"].startswith("compute.")]
    assert compute and "1.6e+21" in json.dumps(compute)  # 6 × 134.5M × 2e12


def test_hostile_directory_is_flagged_never_run_and_exits_zero(hostile_dir: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["inspect", str(hostile_dir), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    check_contract(data)
    by_kind = {(f["kind"], f["file"]): f for f in data["findings"]}
    assert by_kind[("pickle.dangerous_global", "pytorch_model.bin")]["severity"] == "critical"
    assert by_kind[("fs.symlink_outside", "escape.txt")]["severity"] == "high"
    assert ("fs.special_file", "pipe") in by_kind
    assert data["findings"][0]["severity"] == "critical"  # most severe first
    paths = {f["path"]: f for f in data["files"]}
    assert set(paths) == {"config.json", "model.safetensors", "pytorch_model.bin"}  # link and FIFO not read
    for name, entry in paths.items():
        assert entry["sha256"] == sha256sum(hostile_dir / name)
    assert paths["pytorch_model.bin"]["format"] == "pickle"
    assert data["parameters"] == 12 and data["architecture"] == "TinyForCausalLM"
    assert not any((tmp_path / "markers").iterdir())


def test_rich_output_lists_findings(hostile_dir: Path) -> None:
    result = runner.invoke(app, ["inspect", str(hostile_dir)])
    assert result.exit_code == 0, result.output
    assert "critical" in result.stdout and "pickle.dangerous_global" in result.stdout
    assert "TinyForCausalLM" in result.stdout


def test_missing_path_is_a_one_line_error() -> None:
    result = runner.invoke(app, ["inspect", "/no/such/model.gguf", "--json"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.strip().startswith("error: No such file or directory") and len(result.stderr.splitlines()) == 1


def test_card_and_tokens_feed_the_card_and_compute_checks(tmp_path: Path) -> None:
    model = tmp_path / "m.safetensors"
    save_file({"w": np.zeros((1000, 1000), np.float32)}, str(model))
    card = tmp_path / "README.md"
    card.write_text(CARD)
    result = inspect_path(model, card=card)
    kinds = {f.kind for f in result.findings}
    assert any(k.startswith("card.") for k in kinds), kinds  # e.g. missing safety/limitations sections
    compute = [f for f in result.findings if f.kind.startswith("compute.")]
    assert compute and any("2e+12" in (f.evidence or "") for f in compute), compute  # tokens read from the card
    assert "inspection.unavailable" not in kinds or {
        f.message for f in result.findings if f.kind == "inspection.unavailable"
    }


def test_base_diff_runs_or_reports_unavailable(tmp_path: Path) -> None:
    model = tmp_path / "m.safetensors"
    save_file({"w": np.ones((4, 4), np.float32)}, str(model))
    base = tmp_path / "base.safetensors"
    save_file({"w": np.zeros((4, 4), np.float32)}, str(base))
    result = runner.invoke(app, ["inspect", str(model), "--base", str(base), "--json"])
    assert result.exit_code == 0, result.output
    kinds = {f["kind"] for f in json.loads(result.stdout)["findings"]}
    assert any(k.startswith("diff.") for k in kinds) or "inspection.unavailable" in kinds


def test_json_stdout_is_pure_in_a_real_process(tmp_path: Path) -> None:
    model = tmp_path / "m.safetensors"
    save_file({"w": np.zeros((2, 2), np.float32)}, str(model))
    proc = subprocess.run(
        [sys.executable, "-m", "weighbridge.cli", "inspect", str(model), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    check_contract(data)
    assert data["files"][0]["sha256"] == hashlib.sha256(model.read_bytes()).hexdigest()
