"""Release policy as code: a versioned YAML policy, the facts it decides on, and the engine.

policy = load_policy("high-risk")
recommendation = evaluate(policy, facts_from_report(report, card_text=card))
recommendation.release, [r.rule_id for r in recommendation.fired_rules]
"""

from __future__ import annotations

from weighbridge.policy.diff import PolicyChange, RuleChange, diff_policies, diff_rules
from weighbridge.policy.engine import FiredRule, ModelTypeDecision, Recommendation, evaluate, infer_model_type
from weighbridge.policy.facts import CategoryFacts, PolicyFacts, TamperFacts, facts_from_report
from weighbridge.policy.load import BUILTIN_POLICIES, load_policy, parse_policy
from weighbridge.policy.model import MODEL_TYPES, RELEASE_ORDER, ModelType, Policy, ReleaseType, Rule

__all__ = [
    "BUILTIN_POLICIES",
    "MODEL_TYPES",
    "RELEASE_ORDER",
    "CategoryFacts",
    "FiredRule",
    "ModelType",
    "ModelTypeDecision",
    "Policy",
    "PolicyChange",
    "PolicyFacts",
    "Recommendation",
    "ReleaseType",
    "Rule",
    "RuleChange",
    "TamperFacts",
    "diff_policies",
    "diff_rules",
    "evaluate",
    "facts_from_report",
    "infer_model_type",
    "load_policy",
    "parse_policy",
]
