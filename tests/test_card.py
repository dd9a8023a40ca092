"""Model-card parsing, completeness and consistency with the measured metadata."""

from __future__ import annotations

from dataclasses import replace

import pytest

from weighbridge.domain import Finding
from weighbridge.inspection.card import check_card, declared_training_tokens, parse_card
from weighbridge.inspection.metadata import ModelMetadata

MEASURED = ModelMetadata(
    format="gguf",
    architecture="llama",
    layers=30,
    hidden_size=576,
    context_length=8192,
    parameters=134_515_008,
    licence="apache-2.0",
    name="SmolLM2 135M",
)

COMPLETE = """---
license: apache-2.0
language: [en]
params: 135M
training_tokens: 2T
architecture: LlamaForCausalLM
context_length: 8192
---
# SmolLM2-135M-Instruct

SmolLM2 is a family of compact language models available in three sizes: 135M, 360M, and 1.7B parameters.

## Intended use
English chat assistance and summarisation on devices.

## Out-of-scope use
Medical, legal or financial advice; high-stakes decisions.

## Training data
2 trillion tokens of FineWeb-Edu, DCLM, The Stack and synthetic math.

```bash
# Evaluation
pip install lighteval
```

## Evaluation
HellaSwag 42.1, ARC 43.9.

## Limitations
English only; makes factual errors.

## Bias, risks and safety
The model can produce biased or unsafe content; it was not red-teamed.

## License
Apache 2.0.
"""


def kinds(findings: list[Finding]) -> list[str]:
    return [f.kind for f in findings]


def test_complete_card_consistent_with_the_weights_has_no_findings() -> None:
    assert check_card(COMPLETE, MEASURED) == []


def test_parse_card_splits_front_matter_and_sections_and_ignores_code_fences() -> None:
    card = parse_card(COMPLETE)
    assert card.front_matter["license"] == "apache-2.0"
    assert card.title == "SmolLM2-135M-Instruct"
    headings = [s.heading for s in card.sections]
    assert headings.count("Evaluation") == 1  # the "# Evaluation" inside ```bash is a comment
    evaluation = next(s for s in card.sections if s.heading == "Evaluation")
    assert evaluation.body == "HellaSwag 42.1, ARC 43.9."
    assert COMPLETE.splitlines()[evaluation.line - 1] == "## Evaluation"


def test_missing_sections_are_medium_and_missing_safety_is_high() -> None:
    card = "---\nlicense: mit\n---\n# Tiny\n\n## Intended use\nDemos.\n\n## Limitations\nMany.\n"
    findings = check_card(card, None)
    missing = {f.evidence: f.severity for f in findings if f.kind == "card.missing_section"}
    assert missing == {
        "out_of_scope": "medium",
        "training_data": "medium",
        "evaluation": "medium",
        "safety": "high",
    }  # licence is given by the front matter
    safety = next(f for f in findings if f.evidence == "safety")
    assert "Add a section headed 'Safety and risks'" in safety.message


def test_template_placeholder_sections_count_as_missing() -> None:
    card = COMPLETE.replace(
        "The model can produce biased or unsafe content; it was not red-teamed.", "[More Information Needed]"
    )
    [finding] = check_card(card, MEASURED)
    assert finding.kind == "card.missing_section" and finding.severity == "high"
    assert "no content" in finding.message and finding.location is not None and finding.location.startswith("line ")


def test_out_of_scope_heading_does_not_satisfy_intended_use() -> None:
    card = COMPLETE.replace("## Intended use\nEnglish chat assistance and summarisation on devices.\n", "")
    assert [f.evidence for f in check_card(card, MEASURED)] == ["intended_use"]


def test_synonym_headings_are_accepted() -> None:
    card = """---
license: mit
---
## Uses
### Direct Use
Chat.
### Out-of-Scope Use
Weapons advice.
## Training Details
Web text.
## Results
Good.
## Known issues
Hallucinates.
## Ethical considerations
Biased.
"""
    assert [f for f in check_card(card, None) if f.kind == "card.missing_section"] == []


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("---\nlicense: [apache-2.0\nparams: 135M\n---\n# Card\n## Safety\nok\n", "invalid YAML"),
        ("---\nlicense: mit\n# Card never closes the front matter\n## Safety\nok\n", "no closing"),
        ("---\n- just\n- a list\n---\n# Card\n## Safety\nok\n", "not a mapping"),
    ],
)
def test_broken_front_matter_is_a_finding_not_a_crash(text: str, error: str) -> None:
    card = parse_card(text)
    assert card.front_matter == {}
    assert card.front_matter_error is not None and error in card.front_matter_error
    findings = check_card(text, MEASURED)
    [invalid] = [f for f in findings if f.kind == "card.front_matter_invalid"]
    assert invalid.severity == "medium" and error in invalid.message


def test_card_without_front_matter_is_low() -> None:
    findings = check_card(COMPLETE.split("---\n", 2)[2], MEASURED)
    assert "card.front_matter_missing" in kinds(findings)


def test_wrong_parameter_count_in_front_matter_is_high() -> None:
    findings = check_card(COMPLETE.replace("params: 135M", "params: 1.7B"), MEASURED)
    [mismatch] = [f for f in findings if f.kind == "card.parameter_mismatch"]
    assert mismatch.severity == "high"
    assert "1.7B" in mismatch.message and "134,515,008" in mismatch.message


def test_wrong_parameter_count_in_prose_is_high() -> None:
    text = "---\nlicense: apache-2.0\n---\n# Model\nThis model has 1.7 billion parameters.\n"
    assert "card.parameter_mismatch" in kinds(check_card(text, MEASURED))


def test_family_card_listing_the_right_size_passes() -> None:
    text = "---\nlicense: apache-2.0\n---\n# SmolLM2\nAvailable in 135M, 360M, and 1.7B parameters.\n"
    assert "card.parameter_mismatch" not in kinds(check_card(text, MEASURED))


def test_size_label_in_title_is_used_when_nothing_else_is_declared() -> None:
    ok = check_card("# SmolLM2-135M-Instruct\n", MEASURED)
    assert "card.parameter_mismatch" not in kinds(ok) and "card.parameters_undeclared" not in kinds(ok)
    wrong = check_card("# SmolLM2-360M-Instruct\n", MEASURED)
    assert "card.parameter_mismatch" in kinds(wrong)


def test_within_ten_percent_is_consistent() -> None:
    assert "card.parameter_mismatch" not in kinds(check_card(COMPLETE.replace("135M", "145M"), MEASURED))
    assert "card.parameter_mismatch" in kinds(check_card(COMPLETE.replace("params: 135M", "params: 150M"), MEASURED))


def test_undeclared_parameter_count_is_low() -> None:
    [finding] = [f for f in check_card("# Model\n", MEASURED) if f.kind == "card.parameters_undeclared"]
    assert finding.severity == "low"


def test_licence_architecture_and_context_mismatches() -> None:
    text = (
        COMPLETE.replace("license: apache-2.0", "license: mit")
        .replace("architecture: LlamaForCausalLM", "architecture: GPT2LMHeadModel")
        .replace("context_length: 8192", "context_length: 32768")
    )
    findings = {f.kind: f for f in check_card(text, MEASURED)}
    assert findings["card.licence_mismatch"].severity == "medium"
    assert "apache-2.0" in findings["card.licence_mismatch"].message
    assert findings["card.architecture_mismatch"].severity == "medium"
    assert findings["card.context_length_mismatch"].severity == "medium"  # the card promises more than there is


def test_licence_spelling_variants_match() -> None:
    text = COMPLETE.replace("license: apache-2.0", "license: Apache 2.0")
    assert check_card(text, MEASURED) == []
    assert check_card(COMPLETE, replace(MEASURED, licence=None, architecture=None, context_length=None)) == []


def test_context_length_from_prose() -> None:
    text = "# M\nIt supports a context length of 4,096 tokens.\n"
    findings = {f.kind: f for f in check_card(text, MEASURED)}
    assert findings["card.context_length_mismatch"].severity == "low"


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("The model was trained on 2T tokens.", 2e12),
        ("We pretrained it on 2 trillion tokens of web data.", 2e12),
        ("SmolLM2-1.7B was trained on 11 trillion tokens.", 11e12),
        ("Trained on 2,000B tokens.", 2e12),
        ("Training tokens: 11T", 11e12),
        ("It saw 2,000,000,000,000 tokens during training.", 2e12),
        ("---\ntraining_tokens: 2e12\n---\n# M\n", 2e12),
        ("---\ntraining_tokens: 2T\n---\n# M\n", 2e12),
        ("---\ntraining:\n  training_tokens: 15.6 trillion\n---\n# M\n", 15.6e12),
        ("It has a context length of 8192 tokens.", None),
        ("# M\nNo figures here.\n", None),
        ("---\nlicense: [broken\n---\nTrained on 2T tokens.", 2e12),
    ],
)
def test_declared_training_tokens(text: str, tokens: float | None) -> None:
    assert declared_training_tokens(text) == tokens


def test_training_sentence_wins_over_other_token_figures() -> None:
    text = "The tokenizer covers 1B tokens of code. The model was trained on 4T tokens."
    assert declared_training_tokens(text) == 4e12
