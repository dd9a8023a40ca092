"""Model-card checks: is the card complete, and does it agree with what the weights say?

A card is the submitter's own account of the model. Two things can be wrong with it: it can leave
out what a reviewer needs (intended use, limitations, safety), and it can claim what the weights
contradict (a "1.7B" card on a 135M model, a licence the file does not carry). Both are findings,
never exceptions: a broken card is evidence, not a reason to stop the inspection.

Cards follow the Hugging Face convention: optional YAML front matter between `---` lines, then
markdown. Section names vary between the HF template, the Model Card Toolkit and hand-written
cards, so required sections are matched by synonyms on the heading text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import yaml

from weighbridge.domain import Finding, Severity

if TYPE_CHECKING:
    from weighbridge.inspection.metadata import ModelMetadata

PARAMETER_TOLERANCE = 0.10  # size labels are rounded ("135M" for 134.5M): ±10% is a real disagreement

_PLACEHOLDERS = ("[more information needed]", "more information needed", "todo", "tbd", "n/a", "coming soon")


@dataclass(frozen=True)
class CardSection:
    """One markdown heading and the text under it (up to the next heading of any level)."""

    heading: str
    level: int
    body: str
    line: int  # 1-based line of the heading in the card text

    @property
    def is_placeholder(self) -> bool:
        """True when the section exists but says nothing (the HF template's unfilled stubs)."""
        text = re.sub(r"<!--.*?-->", "", self.body, flags=re.S).strip().lower().strip("*_ .")
        return text == "" or text in _PLACEHOLDERS


@dataclass(frozen=True)
class ModelCard:
    """A parsed card. `front_matter_error` is set, and `front_matter` empty, when the YAML is broken."""

    front_matter: dict[str, Any]
    sections: tuple[CardSection, ...]
    body: str
    has_front_matter: bool
    front_matter_error: str | None = None
    body_start_line: int = 1
    title: str | None = field(default=None)


@dataclass(frozen=True)
class RequiredSection:
    """A section reviewers need, with the heading words that count as it."""

    id: str
    title: str
    synonyms: tuple[str, ...]
    severity: Severity
    why: str


# Order matters where synonyms overlap: "out-of-scope use" must be tried before "intended use" so a
# heading "Out-of-scope use" does not satisfy intended use as well.
REQUIRED_SECTIONS: tuple[RequiredSection, ...] = (
    RequiredSection(
        "out_of_scope",
        "Out-of-scope use",
        ("out-of-scope", "out of scope", "misuse", "prohibited use", "not intended", "unintended use"),
        "medium",
        "reviewers judge misuse risk against the uses the lab rules out",
    ),
    RequiredSection(
        "intended_use",
        "Intended use",
        ("intended use", "intended uses", "uses", "direct use", "downstream use", "use cases", "use case"),
        "medium",
        "grades are read against the uses the model is meant for",
    ),
    RequiredSection(
        "training_data",
        "Training data",
        (
            "training data",
            "training dataset",
            "training datasets",
            "datasets",
            "pretraining data",
            "data sources",
            "training",
        ),
        "medium",
        "memorisation, PII and licence risks depend on what the model was trained on",
    ),
    RequiredSection(
        "evaluation",
        "Evaluation",
        ("evaluation", "evaluations", "results", "benchmarks", "performance", "testing"),
        "medium",
        "reviewers compare the lab's own results with the agency's",
    ),
    RequiredSection(
        "limitations",
        "Limitations",
        ("limitations", "limitation", "known issues", "caveats", "recommendations", "shortcomings"),
        "medium",
        "known failure modes tell reviewers where to probe",
    ),
    RequiredSection(
        "safety",
        "Safety and risks",
        (
            "safety",
            "risks",
            "risk",
            "bias",
            "biases",
            "harms",
            "ethical considerations",
            "ethics",
            "responsible ai",
            "red teaming",
            "red-teaming",
        ),
        "high",
        "this is a safety review, and without the lab's own risk assessment there is nothing to check it against",
    ),
    RequiredSection(
        "licence",
        "Licence",
        ("license", "licence", "licensing", "terms of use"),
        "medium",
        "the release decision depends on the terms the weights are published under",
    ),
)

_FRONT_MATTER = re.compile(r"\A\ufeff?---[ \t]*\r?\n(.*?)(?:\r?\n)(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.S)
_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$")
_FENCE = re.compile(r"^\s*(```|~~~)")

_SCALE = {
    "k": 1e3,
    "thousand": 1e3,
    "m": 1e6,
    "million": 1e6,
    "b": 1e9,
    "bn": 1e9,
    "billion": 1e9,
    "t": 1e12,
    "trillion": 1e12,
}
_NUMBER = r"(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)"
_UNIT = r"(k|m|b|bn|t|thousand|million|billion|trillion)"
# "135M parameters", "1.7 billion params", "135M, 360M, and 1.7B parameters"
_PARAM_LIST = re.compile(
    rf"((?:{_NUMBER}\s*{_UNIT}\b[\s,]*(?:and|or|&)?[\s,]*)+)(?:total\s+)?(?:parameters?|params?)\b",
    re.I,
)
_PARAM_ITEM = re.compile(rf"{_NUMBER}\s*{_UNIT}\b", re.I)
# "parameters: 135M" / "Parameters | 1.7B"
_PARAM_AFTER = re.compile(rf"\b(?:parameters?|params?|model size)\b\W{{1,6}}{_NUMBER}\s*{_UNIT}\b", re.I)
# size label in a title: "SmolLM2-135M-Instruct"
_SIZE_LABEL = re.compile(r"(?<![\w.])(?:[A-Za-z][\w.]*-)?(\d+(?:\.\d+)?)([MB])(?![a-zA-Z\d])")
_TOKENS_BEFORE = re.compile(rf"{_NUMBER}\s*{_UNIT}?\s+(?:training\s+)?tokens\b", re.I)
_TOKENS_AFTER = re.compile(
    rf"\b(?:training|pre-?training|train)\s+tokens\b\W{{1,6}}{_NUMBER}\s*{_UNIT}?(?![a-z])",
    re.I,
)
_CONTEXT_PROSE = re.compile(
    r"\b(?:context(?:\s+(?:length|window|size))?|sequence length|max(?:imum)? (?:sequence|context) length)"
    r"\b[^.\n\d]{0,30}?(\d{1,3}(?:,\d{3})+|\d+)\s*(k)?\b",
    re.I,
)
_CONTEXT_BEFORE = re.compile(r"\b(\d+)\s*(k)\s*(?:-?token\s+)?context\b", re.I)

_TOKENS_KEYS = ("training_tokens", "train_tokens", "tokens_trained", "num_training_tokens", "pretraining_tokens")
_PARAM_KEYS = ("params", "parameters", "num_parameters", "parameter_count", "n_params", "model_size")
_ARCH_KEYS = ("architecture", "architectures", "model_type", "model_architecture")
_CONTEXT_KEYS = ("context_length", "context_window", "max_position_embeddings", "max_sequence_length", "n_ctx")
_MIN_TRAINING_TOKENS = 1e8  # below this a "N tokens" phrase is a context length or batch size, not a corpus


def parse_card(text: str) -> ModelCard:
    """Split a card into YAML front matter and markdown sections, never raising.

    Broken YAML leaves `front_matter` empty and records why in `front_matter_error`, so the caller
    can report it and still check the markdown. Headings inside fenced code blocks are ignored
    (a `# comment` in a shell snippet is not a section).
    """
    front: dict[str, Any] = {}
    error: str | None = None
    has_front = False
    body = text
    start_line = 1
    match = _FRONT_MATTER.match(text)
    if match is None and text.lstrip("\ufeff").startswith("---"):
        has_front = True
        error = "the front matter starts with `---` but has no closing `---` line"
    elif match is not None:
        has_front = True
        body = text[match.end() :]
        start_line = text[: match.end()].count("\n") + 1
        try:
            loaded = yaml.safe_load(match.group(1))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 2}" if mark is not None else ""
            error = f"invalid YAML{where}: {getattr(exc, 'problem', None) or exc.__class__.__name__}"
        else:
            if loaded is None:
                front = {}
            elif isinstance(loaded, dict):
                front = {str(k): v for k, v in loaded.items()}
            else:
                error = f"the front matter is a YAML {type(loaded).__name__}, not a mapping of keys to values"

    sections: list[CardSection] = []
    heading: tuple[str, int, int] | None = None
    lines: list[str] = []
    in_fence = False
    title: str | None = None
    for offset, line in enumerate(body.splitlines()):
        if _FENCE.match(line):
            in_fence = not in_fence
        found = None if in_fence else _HEADING.match(line)
        if found is None:
            lines.append(line)
            continue
        if heading is not None:
            sections.append(CardSection(heading[0], heading[1], "\n".join(lines).strip(), heading[2]))
        level = len(found.group(1))
        heading = (found.group(2).strip(), level, start_line + offset)
        if title is None and level == 1:
            title = heading[0]
        lines = []
    if heading is not None:
        sections.append(CardSection(heading[0], heading[1], "\n".join(lines).strip(), heading[2]))
    return ModelCard(
        front_matter=front,
        sections=tuple(sections),
        body=body,
        has_front_matter=has_front,
        front_matter_error=error,
        body_start_line=start_line,
        title=title,
    )


def find_section(card: ModelCard, required: RequiredSection) -> CardSection | None:
    """The first section whose heading names `required`, preferring one with content."""
    hits = [s for s in card.sections if _heading_matches(s.heading, required)]
    filled = [s for s in hits if not s.is_placeholder]
    best = filled or hits
    return best[0] if best else None


def _heading_matches(heading: str, required: RequiredSection) -> bool:
    words = " " + re.sub(r"[^a-z0-9-]+", " ", heading.lower().replace("&", " and ")).strip() + " "
    if required.id == "intended_use" and any(f" {s} " in words or s in words for s in _OUT_OF_SCOPE_WORDS):
        return False
    return any(f" {s} " in words for s in required.synonyms)


_OUT_OF_SCOPE_WORDS = REQUIRED_SECTIONS[0].synonyms


def check_card(card_text: str, metadata: ModelMetadata | None) -> list[Finding]:
    """Completeness and consistency findings for one model card.

    Args:
        card_text: the card as submitted (markdown with optional YAML front matter).
        metadata: what the weights' headers say; None skips the consistency checks (they need
            something to compare with) but still checks completeness.

    A licence given only in the front matter (`license: apache-2.0`, the HF convention) counts as
    the licence section. A section whose body is an unfilled template stub ("[More Information
    Needed]") counts as missing: a heading alone documents nothing.
    """
    card = parse_card(card_text)
    findings: list[Finding] = []
    if card.front_matter_error is not None:
        findings.append(
            Finding(
                kind="card.front_matter_invalid",
                severity="medium",
                message=(
                    f"The model card's YAML front matter cannot be read ({card.front_matter_error}), so its "
                    "declared licence, parameters and training tokens are ignored. Fix the YAML between the `---` "
                    "lines (check quoting and indentation)."
                ),
                file="model card",
                location="front matter",
                evidence=card.front_matter_error,
            )
        )
    elif not card.has_front_matter:
        findings.append(
            Finding(
                kind="card.front_matter_missing",
                severity="low",
                message=(
                    "The model card has no YAML front matter, so licence, base model and training tokens are not "
                    "machine-readable. Add a `---` block with at least `license:` and `training_tokens:`."
                ),
                file="model card",
                location="line 1",
            )
        )

    for required in REQUIRED_SECTIONS:
        if required.id == "licence" and _front_licence(card) is not None:
            continue
        section = find_section(card, required)
        if section is not None and not section.is_placeholder:
            continue
        if section is None:
            what = f"has no {required.title.lower()} section"
            where = None
        else:
            what = f"has a '{section.heading}' section with no content"
            where = f"line {section.line}"
        findings.append(
            Finding(
                kind="card.missing_section",
                severity=required.severity,
                message=(
                    f"The model card {what}: {required.why}. Add a section headed '{required.title}' "
                    f"(headings such as {', '.join(repr(s) for s in required.synonyms[:3])} also count)."
                ),
                file="model card",
                location=where or f"section: {required.id}",
                evidence=required.id,
            )
        )

    if metadata is not None:
        findings.extend(_consistency(card, metadata))
    return findings


def _consistency(card: ModelCard, metadata: ModelMetadata) -> list[Finding]:
    """Claims in the card checked against the measured metadata."""
    findings: list[Finding] = []
    counted = metadata.parameters
    declared = declared_parameters(card)
    if counted is not None and counted > 0 and declared:
        close = [d for d in declared if abs(d - counted) <= PARAMETER_TOLERANCE * counted]
        if not close:
            shown = ", ".join(_si(d) for d in declared)
            findings.append(
                Finding(
                    kind="card.parameter_mismatch",
                    severity="high",
                    message=(
                        f"The model card declares {shown} parameters but the weights hold {counted:,} "
                        f"({_si(counted)}), more than {PARAMETER_TOLERANCE:.0%} apart: the card may describe "
                        "another model, or the weights are not the ones described. Ask the submitter to correct "
                        "the card or submit the matching weights."
                    ),
                    file="model card",
                    location="parameters",
                    evidence=f"declared={shown}; counted={counted}",
                )
            )
    elif counted is not None and not declared:
        findings.append(
            Finding(
                kind="card.parameters_undeclared",
                severity="low",
                message=(
                    f"The model card does not state the parameter count (the weights hold {_si(counted)}). "
                    "Add `params:` to the front matter or a sentence such as '135M parameters'."
                ),
                file="model card",
                location="parameters",
            )
        )

    arch = _front_str(card, _ARCH_KEYS)
    if (
        arch is not None
        and metadata.architecture
        and _norm(metadata.architecture) not in _norm(arch)
        and _norm(arch) not in _norm(metadata.architecture)
    ):
        findings.append(
            Finding(
                kind="card.architecture_mismatch",
                severity="medium",
                message=(
                    f"The model card declares architecture '{arch}' but the weights are '{metadata.architecture}'. "
                    "Correct the card, or check that the submitted weights are the described model."
                ),
                file="model card",
                location="front matter: architecture",
                evidence=f"declared={arch}; measured={metadata.architecture}",
            )
        )

    context = declared_context_length(card)
    if context is not None and metadata.context_length and context != metadata.context_length:
        findings.append(
            Finding(
                kind="card.context_length_mismatch",
                severity="medium" if context > metadata.context_length else "low",
                message=(
                    f"The model card declares a context length of {context:,} tokens but the weights' metadata says "
                    f"{metadata.context_length:,}. Users will rely on the card: correct whichever is wrong."
                ),
                file="model card",
                location="context length",
                evidence=f"declared={context}; measured={metadata.context_length}",
            )
        )

    card_licence = _front_licence(card)
    if card_licence is not None and metadata.licence and _norm(card_licence) != _norm(metadata.licence):
        findings.append(
            Finding(
                kind="card.licence_mismatch",
                severity="medium",
                message=(
                    f"The model card's licence '{card_licence}' differs from the licence in the weights' metadata "
                    f"('{metadata.licence}'). Downstream users see both: ask the submitter which applies and fix "
                    "the other."
                ),
                file="model card",
                location="front matter: license",
                evidence=f"card={card_licence}; weights={metadata.licence}",
            )
        )
    return findings


def declared_parameters(card: ModelCard) -> list[float]:
    """Every parameter count the card claims: front matter first, else prose, else the title's size label.

    A family card ("available in 135M, 360M and 1.7B parameters") claims several; the check passes
    when any of them matches, because the card need not say which one these weights are.
    """
    for key in _PARAM_KEYS:
        value = _lookup(card.front_matter, key)
        number = _to_number(value)
        if number is not None and number > 0:
            return [number]
    found: list[float] = []
    for match in _PARAM_LIST.finditer(card.body):
        found.extend(_scaled(m.group(1), m.group(2)) for m in _PARAM_ITEM.finditer(match.group(1)))
    for match in _PARAM_AFTER.finditer(card.body):
        found.append(_scaled(match.group(1), match.group(2)))
    if not found and card.title:
        for match in _SIZE_LABEL.finditer(card.title):
            found.append(_scaled(match.group(1), match.group(2)))
    return sorted(set(found))


def declared_training_tokens(card_text: str) -> float | None:
    """Training tokens D the card declares, or None when it does not say.

    Looks at front matter keys (`training_tokens: 2e12` or `"2T"`, also nested under `training:`),
    then prose: "trained on 2T tokens", "2 trillion tokens", "2,000B tokens", "training tokens: 11T".
    Numbers below 1e8 are ignored because "8192 tokens" in a card is a context length, not a corpus.
    When the prose gives several figures, one in a sentence about training wins.
    """
    card = parse_card(card_text)
    for key in _TOKENS_KEYS:
        number = _to_number(_lookup(card.front_matter, key))
        if number is not None and number > 0:
            return number
    candidates: list[tuple[bool, int, float]] = []
    for pattern in (_TOKENS_BEFORE, _TOKENS_AFTER):
        for match in pattern.finditer(card.body):
            value = _scaled(match.group(1), match.group(2))
            if value < _MIN_TRAINING_TOKENS:
                continue
            sentence_start = max(card.body.rfind(".", 0, match.start()), card.body.rfind("\n", 0, match.start()))
            sentence = card.body[sentence_start + 1 : match.end()].lower()
            candidates.append(("train" not in sentence, match.start(), value))
    if not candidates:
        return None
    return min(candidates)[2]


def declared_context_length(card: ModelCard) -> int | None:
    """Context length the card claims (front matter key, else "context length of 8192 tokens" / "8k context")."""
    for key in _CONTEXT_KEYS:
        number = _to_number(_lookup(card.front_matter, key))
        if number is not None and number > 0:
            return int(number)
    for pattern in (_CONTEXT_PROSE, _CONTEXT_BEFORE):
        match = pattern.search(card.body)
        if match is not None:
            value = float(match.group(1).replace(",", ""))
            if match.group(2):
                value *= 1024
            if value >= 128:  # smaller figures are not context lengths ("2 contexts")
                return int(value)
    return None


def _front_licence(card: ModelCard) -> str | None:
    licence = _front_str(card, ("license", "licence"))
    if licence is not None and licence.lower() == "other":
        return _front_str(card, ("license_name", "licence_name")) or licence
    return licence


def _front_str(card: ModelCard, keys: tuple[str, ...]) -> str | None:
    for key in keys:
        value = _lookup(card.front_matter, key)
        if isinstance(value, list) and value:
            value = value[0]
        if isinstance(value, str | int | float) and not isinstance(value, bool) and str(value).strip():
            return str(value).strip()
    return None


def _lookup(front: Mapping[str, Any], key: str) -> Any:
    """A key at the top level or one level down (`training: {tokens: ...}` style blocks)."""
    if key in front:
        return front[key]
    for value in front.values():
        if isinstance(value, Mapping) and key in value:
            return value[key]
    return None


def _to_number(value: Any) -> float | None:
    """2e12, "2e12", "2T", "2 trillion", "2,000B" -> float; anything else None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str):
        return None
    text = value.strip().lower().replace("_", "")
    match = re.fullmatch(rf"{_NUMBER}\s*{_UNIT}?(?:\s*(?:tokens|parameters|params))?", text)
    if match is not None:
        return _scaled(match.group(1), match.group(2))
    try:
        return float(text)
    except ValueError:
        return None


def _scaled(number: str, unit: str | None) -> float:
    return float(number.replace(",", "")) * (_SCALE[unit.lower()] if unit else 1.0)


def _norm(text: str) -> str:
    """'Apache 2.0' and 'apache-2.0' are the same licence; 'LlamaForCausalLM' contains 'llama'."""
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _si(value: float) -> str:
    for factor, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= factor:
            return f"{value / factor:.4g}{suffix}"
    return f"{value:.4g}"
