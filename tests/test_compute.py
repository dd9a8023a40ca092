"""Training-compute estimate: C ≈ 6·N·D against the EU (1e25) and US (1e26) thresholds."""

from __future__ import annotations

import pytest

from weighbridge.inspection.card import declared_training_tokens
from weighbridge.inspection.compute import THRESHOLDS, compute_findings, estimate_training_flops

SMOLLM2_PARAMS = 134_515_008  # the default model, counted from its tensor shapes


def test_default_model_with_2t_tokens_is_far_below_both_thresholds() -> None:
    [finding] = compute_findings(SMOLLM2_PARAMS, 2e12, "model card")
    assert finding.kind == "compute.estimate"
    assert finding.severity == "info"
    assert estimate_training_flops(SMOLLM2_PARAMS, 2e12) == pytest.approx(1.614e21, rel=1e-3)
    assert "1.6e+21 FLOPs" in finding.message
    assert "dense transformer" in finding.message and "one epoch" in finding.message
    assert "attention" in finding.message and "fine-tuning" in finding.message
    assert "model card" in finding.message
    assert finding.evidence is not None and "C=1.614e+21" in finding.evidence


def test_405b_on_15_6t_tokens_crosses_the_eu_threshold_only() -> None:
    [finding] = compute_findings(405_000_000_000, 15.6e12, "--tokens")
    assert estimate_training_flops(405_000_000_000, 15.6e12) == pytest.approx(3.79e25, rel=1e-3)
    assert finding.kind == "compute.threshold_exceeded"
    assert finding.severity == "high"
    assert "EU AI Act" in finding.message or "2024/1689" in finding.message
    assert "14110" not in finding.message  # below the US level


def test_above_the_us_threshold_is_critical() -> None:
    [finding] = compute_findings(2_000_000_000_000, 10e12, "--tokens")  # 1.2e26
    assert finding.severity == "critical"
    assert "14110" in finding.message and "2024/1689" in finding.message


def test_exactly_at_a_threshold_is_not_above_it() -> None:
    # Both texts say "greater than": 6 * 1e12 * (1e25 / 6e12) == 1e25 is not over.
    [finding] = compute_findings(1_000_000_000_000, 1e25 / 6e12, "--tokens")
    assert finding.severity == "info"


@pytest.mark.parametrize(
    ("parameters", "tokens", "unknown"),
    [
        (SMOLLM2_PARAMS, None, "training tokens"),
        (None, 2e12, "parameter count"),
        (None, None, "parameter count N (the weights could not be counted"),
        (SMOLLM2_PARAMS, -5.0, "not a positive number"),
        (0, 2e12, "valid parameter count"),
    ],
)
def test_unknown_inputs_say_what_is_missing_and_how_to_declare_it(
    parameters: int | None, tokens: float | None, unknown: str
) -> None:
    [finding] = compute_findings(parameters, tokens, "model card")
    assert finding.kind == "compute.unknown"
    assert finding.severity == "low"
    assert unknown in finding.message
    assert "--tokens" in finding.message and "training_tokens:" in finding.message


def test_thresholds_are_data_with_their_sources() -> None:
    assert [t.flops for t in THRESHOLDS] == [1e26, 1e25]
    assert all(t.source and t.url.startswith("https://") for t in THRESHOLDS)
    assert [t.severity for t in THRESHOLDS] == ["critical", "high"]


def test_card_declaring_2t_tokens_feeds_the_estimate() -> None:
    card = "# SmolLM2\n\nThe 135M model was trained on 2T tokens of web, code and math data.\n"
    tokens = declared_training_tokens(card)
    assert tokens == 2e12
    [finding] = compute_findings(SMOLLM2_PARAMS, tokens, "model card")
    assert finding.severity == "info" and "2T tokens" in finding.message
