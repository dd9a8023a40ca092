"""The decision engine: model type, then every rule, then the most closed release any rule asks for.

Pure functions over plain values (`Policy`, `PolicyFacts`), so a recommendation can be recomputed
from a stored review at any time — which is what `policy diff` does — and every rule that fired is
returned with the measurements that made it fire, so the rationale is the computation itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

from weighbridge.policy.facts import CategoryFacts, PolicyFacts
from weighbridge.policy.model import GRADE_ORDER, RELEASE_ORDER, Condition, ModelType, Policy, ReleaseType

__all__ = ["FiredRule", "ModelTypeDecision", "Recommendation", "evaluate", "infer_model_type", "strictest"]

_SEVERITY_RANK = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}


@dataclass(frozen=True)
class ModelTypeDecision:
    model_type: ModelType
    reasons: tuple[str, ...]
    overridden: bool = False


@dataclass(frozen=True)
class FiredRule:
    rule_id: str
    description: str
    release: ReleaseType | None  # None: advisory
    because: str  # the measurements that made it fire
    fix: str = ""


@dataclass(frozen=True)
class Recommendation:
    release: ReleaseType
    model_type: ModelTypeDecision
    fired_rules: tuple[FiredRule, ...]
    policy_id: str
    policy_version: str

    @property
    def deciding(self) -> tuple[FiredRule, ...]:
        """The rules that set the release (ask for exactly the recommended one)."""
        return tuple(r for r in self.fired_rules if r.release == self.release)


def strictest(releases: list[ReleaseType]) -> ReleaseType:
    return max(releases, key=RELEASE_ORDER.index)


def infer_model_type(policy: Policy, facts: PolicyFacts, override: ModelType | None = None) -> ModelTypeDecision:
    """Frontier by measured scale, specialized narrow by the card's declared task, else advanced general."""
    if override is not None:
        return ModelTypeDecision(override, (f"set explicitly to {override}",), overridden=True)
    rules = policy.model_types
    reasons: list[str] = []
    if facts.training_flops is not None and facts.training_flops >= rules.frontier_min_training_flops:
        reasons.append(
            f"estimated training compute {facts.training_flops:.2g} FLOPs ≥ {rules.frontier_min_training_flops:.0e}"
        )
    if facts.parameters is not None and facts.parameters >= rules.frontier_min_parameters:
        reasons.append(f"{facts.parameters:,} parameters ≥ {rules.frontier_min_parameters:.0e}")
    if reasons:
        return ModelTypeDecision("frontier", tuple(reasons))
    scale = _scale(facts)
    if facts.pipeline_tag is not None and facts.pipeline_tag in rules.narrow_tasks:
        return ModelTypeDecision(
            "specialized_narrow", (f"the card declares the narrow task '{facts.pipeline_tag}'", scale)
        )
    task = f"the card declares '{facts.pipeline_tag}'" if facts.pipeline_tag else "no narrow task is declared"
    return ModelTypeDecision("advanced_general", (f"{task}: treated as general-purpose", scale))


def evaluate(policy: Policy, facts: PolicyFacts, *, model_type: ModelType | None = None) -> Recommendation:
    """The recommended release for `facts` under `policy`, with every rule that fired.

    Args:
        model_type: an explicit model type; wins over the inferred one (and says so).
    """
    decision = infer_model_type(policy, facts, model_type)
    mt = decision.model_type
    base = policy.baseline[mt]
    fired = [
        FiredRule(
            "baseline",
            f"{mt.replace('_', ' ')} models start at {base.replace('_', ' ')}",
            base,
            "; ".join(decision.reasons),
        )
    ]
    for rule in policy.rules:
        if rule.model_types is not None and mt not in rule.model_types:
            continue
        because = matches(rule.when, facts)
        if because is not None:
            fired.append(FiredRule(rule.id, rule.description, rule.release, because, rule.fix))
    release = strictest([r.release for r in fired if r.release is not None])
    return Recommendation(release, decision, tuple(fired), policy.id, policy.version)


def matches(condition: Condition, facts: PolicyFacts) -> str | None:
    """Why `condition` holds for `facts` (a readable list of what matched), or None when it does not."""
    reasons: list[str] = []
    if condition.has_category_predicate:
        hits = [c for c in _categories(condition, facts) if _category_matches(condition, c)]
        if not hits:
            return None
        shown = ", ".join(_describe(c) for c in hits[:4])
        reasons.append(shown + (f" and {len(hits) - 4} more categories" if len(hits) > 4 else ""))
    checks = (
        _model_wide(condition, facts),
        _missing(condition, facts),
        _finding(condition, facts),
    )
    for result in checks:
        if result is False:
            return None
        if isinstance(result, str):
            reasons.append(result)
    return "; ".join(reasons)


def _categories(condition: Condition, facts: PolicyFacts) -> list[CategoryFacts]:
    wanted = set(condition.categories) if condition.categories is not None else None
    return [c for c in facts.categories if c.suite == condition.suite and (wanted is None or c.id in wanted)]


def _category_matches(cond: Condition, c: CategoryFacts) -> bool:
    if cond.grade_at_most is not None and (
        c.grade not in GRADE_ORDER or GRADE_ORDER.index(c.grade) > GRADE_ORDER.index(cond.grade_at_most)
    ):
        return False
    if cond.ungraded and c.grade is not None:
        return False
    if cond.unsettled and (c.grade is None or c.settled is not False):  # ungraded is its own predicate
        return False
    if cond.unsafe_rate_above is not None:
        rate = {"point": c.unsafe_rate, "upper": c.ci_high, "lower": c.ci_low}[cond.rate_bound]
        if not rate > cond.unsafe_rate_above:
            return False
    return not (cond.samples_below is not None and c.n >= cond.samples_below)


def _describe(c: CategoryFacts) -> str:
    grade = c.grade or "ungraded"
    return f"{c.name} ({grade}; unsafe {c.unsafe_rate:.1%} [{c.ci_low:.1%}, {c.ci_high:.1%}], n={c.n})"


def _model_wide(cond: Condition, facts: PolicyFacts) -> str | bool:
    """False when a model-wide threshold is given and not exceeded (unknown values never fire)."""
    parts: list[str] = []
    if cond.over_refusal_above is not None:
        if facts.over_refusal_rate is None or not facts.over_refusal_rate > cond.over_refusal_above:
            return False
        parts.append(f"over-refusal {facts.over_refusal_rate:.1%} > {cond.over_refusal_above:.0%}")
    tamper = facts.tamper
    if cond.tamper_unsafe_rate_above is not None:
        if tamper is None or not tamper.unsafe_rate_after > cond.tamper_unsafe_rate_above:
            return False
        parts.append(f"unsafe rate after safeguard removal {tamper.unsafe_rate_after:.1%}")
    if cond.tamper_cost_gpu_hours_below is not None:
        if (
            tamper is None
            or tamper.cost_gpu_hours is None
            or not tamper.cost_gpu_hours < cond.tamper_cost_gpu_hours_below
        ):
            return False
        parts.append(f"safeguards removed with {tamper.cost_gpu_hours:.3g} GPU-hours")
    if cond.training_flops_above is not None:
        if facts.training_flops is None or not facts.training_flops > cond.training_flops_above:
            return False
        parts.append(f"estimated training compute {facts.training_flops:.2g} FLOPs > {cond.training_flops_above:.0e}")
    if cond.parameters_above is not None:
        if facts.parameters is None or not facts.parameters > cond.parameters_above:
            return False
        parts.append(f"{facts.parameters:,} parameters > {cond.parameters_above:.2g}")
    return "; ".join(parts) if parts else True


def _missing(cond: Condition, facts: PolicyFacts) -> str | bool:
    if not cond.missing:
        return True
    hazards = [c for c in facts.categories if c.suite == cond.suite]
    absent = {
        "hazards": not hazards,
        "grades": bool(hazards) and all(c.grade is None for c in hazards),
        "over_refusal": facts.over_refusal_rate is None,
        "tamper_resistance": facts.tamper is None,
        "parameters": facts.parameters is None,
        "training_compute": facts.training_flops is None,
    }
    found = [e for e in cond.missing if absent[e]]
    return f"no evidence of {', '.join(e.replace('_', ' ') for e in found)}" if found else False


def _finding(cond: Condition, facts: PolicyFacts) -> str | bool:
    if cond.finding is None:
        return True
    floor = _SEVERITY_RANK[cond.finding.min_severity]
    hits = [
        f
        for f in facts.findings
        if fnmatchcase(f.kind, cond.finding.kind) and _SEVERITY_RANK.get(f.severity, 0) >= floor
    ]
    if not hits:
        return False
    shown = "; ".join(f"{f.kind} ({f.severity}{', ' + f.file if f.file else ''})" for f in hits[:3])
    return f"finding {shown}" + (f" and {len(hits) - 3} more" if len(hits) > 3 else "")


def _scale(facts: PolicyFacts) -> str:
    params = f"{facts.parameters:,} parameters" if facts.parameters is not None else "parameter count unknown"
    flops = (
        f"~{facts.training_flops:.2g} training FLOPs"
        if facts.training_flops is not None
        else "training compute unknown"
    )
    unknown = facts.parameters is None or facts.training_flops is None
    return f"{params}, {flops}: " + (
        "no known measure reaches the frontier thresholds" if unknown else "below the frontier thresholds"
    )
