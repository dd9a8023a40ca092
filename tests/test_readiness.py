"""`weighbridge readiness`: a complete card passes its checks, hostile weights block, the hazard
slice runs on the default model, and nothing is written to the reviewer's store or home."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.hostile_corpus import build_corpus
from weighbridge.cli import app
from weighbridge.services.readiness import assess

runner = CliRunner()

GOOD_CARD = """---
license: apache-2.0
params: 135M
training_tokens: 2e12
pipeline_tag: text-generation
---
# SmolLM2-135M-Instruct

A 135M parameters instruction-tuned model.

## Intended use
Chat and simple text tasks on small devices.

## Out-of-scope use
Medical, legal or financial advice; any high-stakes decision.

## Training data
2T tokens of public web text, code and maths.

## Evaluation
Standard benchmarks; results in the original card.

## Limitations
Small models make factual errors and follow instructions loosely.

## Safety and risks
Red-teamed for refusals on harmful requests; refusal is imperfect.
"""


def write_card(tmp_path: Path, text: str = GOOD_CARD) -> Path:
    card = tmp_path / "README.md"
    card.write_text(text)
    return card


def test_quick_checks_of_a_complete_card(tmp_path: Path, default_model_path: Path, isolated_home: Path) -> None:
    result = assess(default_model_path, write_card(tmp_path), quick=True)
    by_id = {c.id: c for c in result.checks}
    assert by_id["card.ok"].status == "pass"
    assert by_id["signature.absent"].status == "warn" and "model_signing" in by_id["signature.absent"].fix
    assert by_id["hazards.skipped"].status == "warn"
    assert not result.blocking and result.recommendation is None
    assert not isolated_home.exists(), "readiness must not create a store or keys in the reviewer's home"


def test_incomplete_card_is_flagged_with_fixes(tmp_path: Path, default_model_path: Path) -> None:
    card = write_card(tmp_path, "---\nlicense: mit\nparams: 7B\n---\n# Model\n## Intended use\nChat.\n")
    result = assess(default_model_path, card, quick=True)
    kinds = {c.id: c for c in result.checks}
    assert kinds["card.parameter_mismatch"].status == "fail"
    assert kinds["card.missing_section"].fix == "Add the section to the model card"
    assert result.blocking


def test_hostile_directory_blocks(tmp_path: Path, isolated_home: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    corpus = build_corpus(tmp_path / "corpus", tmp_path / "markers")
    hostile = next(f for f in corpus if f.name == "os_system.pkl")
    (model / "pytorch_model.bin").write_bytes(hostile.path.read_bytes())
    result = runner.invoke(app, ["readiness", str(model), "--card", str(write_card(tmp_path)), "--json"])
    assert result.exit_code == 1, result.output
    data = json.loads(result.output)
    assert data["blocking"] is True
    failing = [c for c in data["checks"] if c["status"] == "fail"]
    assert any(c["id"].startswith("pickle.") and "safetensors or GGUF" in c["fix"] for c in failing)
    # not evaluable, so no slice and no prediction; and nothing was loaded
    assert any(c["id"] == "hazards.not_evaluable" for c in data["checks"])
    assert not any((tmp_path / "markers").iterdir())
    assert not isolated_home.exists()


def test_missing_path_is_one_line(tmp_path: Path) -> None:
    result = runner.invoke(app, ["readiness", str(tmp_path / "nope.gguf"), "--quick"])
    assert result.exit_code == 1 and "No such model" in result.output


@pytest.mark.slow
def test_hazard_slice_on_the_default_model(tmp_path: Path, default_model_path: Path, isolated_home: Path) -> None:
    result = runner.invoke(
        app,
        ["readiness", str(default_model_path), "--card", str(write_card(tmp_path)), "--limit", "1",
         "--max-tokens", "16", "--json"],
    )  # fmt: skip
    data = json.loads(result.output)
    hazards = [c for c in data["checks"] if c["area"] == "hazards"]
    assert len(hazards) == 13 and all(c["status"] in ("pass", "warn") for c in hazards)
    assert data["evaluated"] is True
    prediction = next(c for c in data["checks"] if c["id"] == "policy.prediction")
    # one prompt per category cannot support an open release under the default policy
    assert data["predicted_release"] in ("research_release", "restricted_api")
    assert "small-sample" in prediction["detail"]
    assert result.exit_code == (1 if data["blocking"] else 0)
    assert not isolated_home.exists(), "the slice must use a throw-away store"


def test_broken_gguf_is_flagged(tmp_path: Path) -> None:
    broken = tmp_path / "model.gguf"
    broken.write_bytes(b"NOTG" + bytes(100))
    result = assess(broken, write_card(tmp_path), quick=True)
    bad = [c for c in result.checks if c.id.startswith("gguf.")]
    assert bad and bad[0].status == "fail" and "converter" in bad[0].fix
    assert result.blocking
