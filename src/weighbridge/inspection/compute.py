"""Training-compute estimate (C ≈ 6·N·D) compared with the regulatory reporting thresholds.

Why an estimate at all: the thresholds that trigger reporting duties are stated in training FLOPs,
which no weight file records. The standard back-of-the-envelope estimate (Kaplan et al. 2020,
"Scaling Laws for Neural Language Models", §2.1) is C ≈ 6·N·D: two FLOPs per parameter per token
for the forward pass and four for the backward pass. It is good to a small factor for dense
transformers, which is enough to tell 1e21 from 1e25; it is not a measurement, and every finding
says which assumptions it rests on so a reviewer can challenge it.

The thresholds are data (`THRESHOLDS`) with their legal source, so a change of law is a change of
one table, and reports can cite where each number comes from.
"""

from __future__ import annotations

from dataclasses import dataclass

from weighbridge.domain import Finding, Severity

FLOPS_PER_PARAMETER_TOKEN = 6.0

ASSUMPTIONS = (
    "assumes a dense transformer trained for one epoch over the declared tokens, "
    "counts 6 FLOPs per parameter per token (forward + backward), ignores attention FLOPs, "
    "mixture-of-experts sparsity, and the compute of the base model or of any fine-tuning"
)


@dataclass(frozen=True)
class ComputeThreshold:
    """A training-compute level above which a legal duty or presumption applies."""

    flops: float
    name: str
    consequence: str
    source: str
    url: str
    severity: Severity


# Ordered from the highest to the lowest: the first threshold reached decides the severity.
THRESHOLDS: tuple[ComputeThreshold, ...] = (
    ComputeThreshold(
        flops=1e26,
        name="US EO 14110",
        consequence="reporting to the US government of dual-use foundation model training",
        source=(
            "US Executive Order 14110 (30 Oct 2023), sec. 4.2(b)(i); "
            "revoked by EO 14148 (20 Jan 2025), kept as the reference level"
        ),
        url="https://www.federalregister.gov/documents/2023/11/01/2023-24283",
        severity="critical",
    ),
    ComputeThreshold(
        flops=1e25,
        name="EU AI Act",
        consequence="presumption of a general-purpose AI model with systemic risk (notify the AI Office)",
        source="Regulation (EU) 2024/1689 (AI Act), Art. 51(2)",
        url="https://eur-lex.europa.eu/eli/reg/2024/1689/oj",
        severity="high",
    ),
)


def estimate_training_flops(parameters: int, tokens: float) -> float:
    """C ≈ 6·N·D. Kept separate so reports and tests can show the arithmetic."""
    return FLOPS_PER_PARAMETER_TOKEN * float(parameters) * float(tokens)


def compute_findings(parameters: int | None, tokens: float | None, source: str) -> list[Finding]:
    """Findings on training compute versus the reporting thresholds.

    Args:
        parameters: exact parameter count N from the weights, or None when the weights could not
            be counted (e.g. an unreadable header).
        tokens: training tokens D declared by the submitter (`--tokens`) or the model card; None
            when nobody declared them. A weight file never records D, so it cannot be measured.
        source: where `tokens` came from ("model card front matter", "--tokens", ...), quoted in
            the message so a reviewer can check the claim.

    Returns exactly one finding. Unknown or invalid inputs give a `compute.unknown` finding that
    says what is missing and how to declare it, never a guessed number: a silent default would
    make a frontier model look small.
    """
    missing: list[str] = []
    if parameters is None or parameters <= 0:
        missing.append(
            "the parameter count N (the weights could not be counted; check the format findings)"
            if parameters is None
            else f"a valid parameter count N (got {parameters})"
        )
    if tokens is None or not tokens > 0 or tokens == float("inf"):
        missing.append(
            "the number of training tokens D"
            + ("" if tokens is None else f" (the declared value {tokens!r} from {source} is not a positive number)")
        )
    if missing or parameters is None or tokens is None:
        return [
            Finding(
                kind="compute.unknown",
                severity="low",
                message=(
                    "Training compute cannot be estimated: unknown "
                    + " and ".join(missing)
                    + ". Without it nobody can tell whether the model crosses the 1e25 FLOPs (EU AI Act) or "
                    "1e26 FLOPs (US EO 14110) thresholds. The submitter must declare the training tokens with "
                    "`--tokens` or `training_tokens:` in the model card's YAML front matter (e.g. "
                    "`training_tokens: 2e12`)."
                ),
                location="training compute",
                evidence=f"N={parameters}; D={tokens}; D source={source}",
            )
        ]

    flops = estimate_training_flops(parameters, tokens)
    # Both texts say "greater than", so a model exactly at the threshold is not above it.
    crossed = [t for t in THRESHOLDS if flops > t.flops]
    arithmetic = (
        f"6 × {_si(parameters)} parameters × {_si(tokens)} tokens (from {source}) ≈ {flops:.2g} FLOPs ({ASSUMPTIONS})"
    )
    if crossed:
        top = crossed[0]
        names = "; ".join(f"{t.flops:.0e} FLOPs ({t.source}: {t.consequence})" for t in crossed)
        message = (
            f"Estimated training compute {arithmetic} is above {names}. Ask the submitter for the "
            "measured training compute and confirm the notification duty before release."
        )
        severity: Severity = top.severity
        kind = "compute.threshold_exceeded"
    else:
        lowest = THRESHOLDS[-1]
        ratio = flops / lowest.flops
        message = (
            f"Estimated training compute {arithmetic} is below every reporting threshold "
            f"({', '.join(f'{t.flops:.0e} {t.name}' for t in THRESHOLDS)}); it is {ratio:.2g} of the "
            f"lowest. No action needed unless the declared tokens are wrong."
        )
        severity = "info"
        kind = "compute.estimate"
    return [
        Finding(
            kind=kind,
            severity=severity,
            message=message,
            location="training compute",
            evidence=f"N={parameters}; D={tokens:.6g}; C={flops:.4g}; D source={source}",
        )
    ]


def _si(value: float) -> str:
    """1.345e8 -> '134.5M': the scale a reader expects for parameters and tokens."""
    for factor, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= factor:
            return f"{value / factor:.4g}{suffix}"
    return f"{value:.4g}"
