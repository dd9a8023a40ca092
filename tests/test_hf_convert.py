"""`weighbridge convert MODEL.gguf --to hf OUT/`, and a converted directory reviewed end to end
through the transformers target (submit → evaluate from custody → report; and `review DIR`)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli_runner import wb
from tests.hf_fixtures import build_tiny_hf
from weighbridge.domain import ChatMessage
from weighbridge.errors import WeighbridgeError
from weighbridge.report import validate_report
from weighbridge.targets.convert import convert_gguf_to_hf
from weighbridge.targets.hf import HFTarget

FRANCE = (ChatMessage("user", "Which city is the capital of France?"),)
QUICK = ["--limit", "1", "--max-tokens", "8", "--threads", "2"]


def test_convert_refuses_what_it_cannot_convert(tmp_path: Path, default_model_path: Path) -> None:
    text = tmp_path / "model.gguf"
    text.write_text("not a model")
    refused = wb("convert", str(text), "--to", "hf", str(tmp_path / "out"))
    assert refused.returncode == 1 and "is not a GGUF file" in refused.stderr
    tiny = build_tiny_hf(tmp_path / "tiny")
    refused = wb("convert", str(tiny), "--to", "hf", str(tmp_path / "out"))
    assert refused.returncode == 1 and "No such file" in refused.stderr
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    refused = wb("convert", str(default_model_path), "--to", "hf", str(full))
    assert refused.returncode == 1 and "is not empty" in refused.stderr and "--force" in refused.stderr
    refused = wb("convert", str(default_model_path), "--to", "onnx", str(tmp_path / "x"))
    assert refused.returncode == 1 and "Use --to hf" in refused.stderr
    with pytest.raises(WeighbridgeError, match="Unknown dtype"):
        convert_gguf_to_hf(default_model_path, tmp_path / "y", dtype="int4")
    assert (full / "keep.txt").read_text() == "mine" and not (tmp_path / "out").exists()


@pytest.fixture(scope="session")
def smollm2_hf(default_model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """SmolLM2-135M-Instruct converted once per session through the CLI (≈ 30 s on 2 busy cores),
    in bfloat16: half the bytes to hash, encrypt and decrypt of the default float32 (the CPU target
    loads it as float32 again)."""
    out = tmp_path_factory.mktemp("smollm2-hf") / "SmolLM2-135M-Instruct"
    done = wb("convert", str(default_model_path), "--to", "hf", str(out), "--dtype", "bfloat16")
    assert done.returncode == 0, done.stderr
    assert "134,515,008 parameters (bfloat16)" in done.stdout
    yield out
    for file in out.iterdir():  # 540 MB: not left in pytest's kept temporary directories
        file.unlink()


@pytest.mark.slow
def test_the_converted_model_knows_paris(smollm2_hf: Path) -> None:
    """The first answer token is read from log-probabilities, not from a greedy answer.

    Measured 2026-12-08 (transformers 5.25, the float32 conversion, CPU): the likeliest first
    tokens are "The" (-2.04), "Le" (-2.06) and "La" (-2.28): a near tie, so which one leads is not
    asserted, and " Paris" is not among them (the model opens with a phrase, not the name). After "The capital of
    France is" the likeliest next token is " Paris", which is what is asserted, with a margin.
    """
    names = {p.name for p in smollm2_hf.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= names
    target = HFTarget(smollm2_hf, n_threads=2)
    try:
        assert "<|im_start|>assistant\n" in target.format_prompt(FRANCE)  # the GGUF's ChatML template came along
        first = dict(target.first_token_logprobs(FRANCE, top_k=5))
        assert {"The", "Le"} <= set(first)
        [(best, best_lp), (_, second_lp)] = target.first_token_logprobs(
            FRANCE, top_k=2, answer_prefix="The capital of France is"
        )
    finally:
        target.close()
    assert best == " Paris" and best_lp - second_lp > 1.0


@pytest.mark.slow
def test_a_converted_directory_is_reviewed_from_custody(smollm2_hf: Path, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'hf.db'}"
    sub = wb("submit", str(smollm2_hf), "--db", db)
    assert sub.returncode == 0, sub.stderr
    assert " · hf · " in sub.stdout and "encrypted in custody" in sub.stdout
    match = re.search(r"^Submission ([0-9a-f-]{36}) ", sub.stdout, re.MULTILINE)
    assert match, sub.stdout
    ev = wb("evaluate", match.group(1)[:8], *QUICK, "--db", db)
    assert ev.returncode == 0, ev.stderr
    assert "13 samples (13 generated" in ev.stdout

    # `review DIR`: the same submission, the run above found finished (nothing generated again),
    # the report built from its journal as `weighbridge report RUN` builds it.
    out = tmp_path / "review"
    reviewed = wb(
        "review", str(smollm2_hf), *QUICK, "--no-reference", "--check-sample", "0", "--out", str(out), "--db", db
    )
    assert reviewed.returncode == 0, reviewed.stderr
    assert "13 samples (0 generated" in reviewed.stdout
    report = json.loads((out / "report.json").read_text())
    validate_report(report)
    assert report["model"]["format"] == "hf" and report["model"]["name"] == "SmolLM2-135M-Instruct"
    assert report["timing"]["samples"] == 13 and report["timing"]["tokens_generated"] > 0
