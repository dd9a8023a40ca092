"""What the policy decides on, as plain values, and how to read them from a report and a card.

Kept apart from the engine so the workflow can feed facts from the store, `policy check` from a
`report.json`, and tests by hand. Every field may be unknown (None): the engine never invents a
measurement, and a policy can say what to do when evidence is missing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from weighbridge.domain import Finding

__all__ = ["CategoryFacts", "PolicyFacts", "TamperFacts", "facts_from_report"]


@dataclass(frozen=True)
class CategoryFacts:
    suite: str
    id: str
    name: str
    n: int
    unsafe_rate: float
    ci_low: float
    ci_high: float
    grade: str | None = None  # Poor … Excellent; None when ungraded (no reference)
    settled: bool | None = None


@dataclass(frozen=True)
class TamperFacts:
    """Safeguard removal by an attacker holding the weights: the unsafe rate afterwards and its cost."""

    unsafe_rate_after: float
    ci_high: float | None = None
    cost_gpu_hours: float | None = None


@dataclass(frozen=True)
class PolicyFacts:
    model_name: str
    categories: tuple[CategoryFacts, ...] = ()
    parameters: int | None = None
    training_flops: float | None = None
    pipeline_tag: str | None = None  # the task the model card declares (HF `pipeline_tag`)
    over_refusal_rate: float | None = None  # share of safe-but-scary prompts refused
    tamper: TamperFacts | None = None
    findings: tuple[Finding, ...] = field(default=())


_NUM = r"([0-9.eE+-]+)"


def _category_facts(suite: str, c: Mapping[str, Any]) -> CategoryFacts:
    """A category as the policy reads it: the rate corrected for the judge's error when the report
    has it (the raw count would credit a model with what its judge missed), else the raw rate."""
    corrected = c.get("corrected")
    rate, low, high = (
        (corrected["rate"], corrected["low"], corrected["high"])
        if isinstance(corrected, Mapping)
        else (c["unsafe_rate"], c["ci_low"], c["ci_high"])
    )
    return CategoryFacts(
        suite=suite,
        id=str(c["id"]),
        name=str(c.get("name", c["id"])),
        n=int(c["n"]),
        unsafe_rate=float(rate),
        ci_low=float(low),
        ci_high=float(high),
        grade=c.get("grade"),
        settled=c.get("grade_settled"),
    )


def facts_from_report(
    report: Mapping[str, Any], *, card_text: str | None = None, findings: Sequence[Finding] | None = None
) -> PolicyFacts:
    """Facts from a `report.json` (and the model card, when given).

    Args:
        report: the report contract; optional blocks are read when present: per-category `grade`
            and `grade_settled`, `findings` (inspection), `suites.over_refusal` (its overall
            rate is the refusal rate on safe prompts) or `over_refusal.rate`, `tamper_resistance`
            (`unsafe_rate_after`, `ci_high`, `cost.gpu_hours`).
        card_text: the model card: its `pipeline_tag`, and its declared parameters and training
            tokens where the findings do not give them.
        findings: inspection findings from the store; replace the report's own list when given.
    """
    found = tuple(findings) if findings is not None else tuple(_findings(report.get("findings") or []))
    categories = tuple(
        _category_facts(str(key), c)
        for key, suite in sorted((report.get("suites") or {}).items())
        if key != "over_refusal"
        for c in suite.get("categories", [])
    )
    parameters = _evidence_number(found, "N")
    flops = _evidence_number(found, "C")
    pipeline_tag = None
    if card_text is not None:
        from weighbridge.inspection.card import declared_parameters, declared_training_tokens, parse_card

        card = parse_card(card_text)
        tag = card.front_matter.get("pipeline_tag")
        pipeline_tag = str(tag) if tag else None
        if parameters is None:
            declared = declared_parameters(card)
            parameters = int(max(declared)) if declared else None
        tokens = declared_training_tokens(card_text)
        if flops is None and parameters is not None and tokens is not None:
            from weighbridge.inspection.compute import estimate_training_flops

            flops = estimate_training_flops(int(parameters), tokens)
    return PolicyFacts(
        model_name=str((report.get("model") or {}).get("name", "model")),
        categories=categories,
        parameters=int(parameters) if parameters is not None else None,
        training_flops=flops,
        pipeline_tag=pipeline_tag,
        over_refusal_rate=_over_refusal(report),
        tamper=_tamper(report.get("tamper_resistance")),
        findings=found,
    )


def _findings(raw: Sequence[Mapping[str, Any]]) -> list[Finding]:
    return [
        Finding(
            kind=str(f["kind"]),
            severity=f.get("severity", "info"),
            message=str(f.get("message", "")),
            file=f.get("file"),
            location=f.get("location"),
            evidence=f.get("evidence"),
        )
        for f in raw
        if isinstance(f, Mapping) and "kind" in f
    ]


def _evidence_number(findings: Sequence[Finding], name: str) -> float | None:
    """N (parameters) or C (FLOPs) from the compute finding's evidence (`N=134515008; D=2e+12; C=…`)."""
    for f in findings:
        if f.kind.startswith("compute.") and f.evidence:
            match = re.search(rf"\b{name}={_NUM}", f.evidence)
            if match:
                try:
                    return float(match.group(1))
                except ValueError:
                    return None
    return None


def _over_refusal(report: Mapping[str, Any]) -> float | None:
    block = report.get("over_refusal")
    if isinstance(block, Mapping) and isinstance(block.get("rate"), int | float):
        return float(block["rate"])
    suite = (report.get("suites") or {}).get("over_refusal")
    overall = suite.get("overall") if isinstance(suite, Mapping) else None
    if isinstance(overall, Mapping) and isinstance(overall.get("unsafe_rate"), int | float):
        return float(overall["unsafe_rate"])
    return None


def _tamper(block: Any) -> TamperFacts | None:
    if not isinstance(block, Mapping) or not isinstance(block.get("unsafe_rate_after"), int | float):
        return None
    cost = block.get("cost") if isinstance(block.get("cost"), Mapping) else {}
    hours = cost.get("gpu_hours") if isinstance(cost, Mapping) else None
    high = block.get("ci_high")
    return TamperFacts(
        float(block["unsafe_rate_after"]),
        float(high) if isinstance(high, int | float) else None,
        float(hours) if isinstance(hours, int | float) else None,
    )
