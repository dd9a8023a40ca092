"""What a policy change would change: for the rules themselves and for past reviews.

A reviewer changing the policy must see which published decisions it would have changed before
adopting it; recomputing is cheap because the engine is pure and the facts are stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from weighbridge.policy.engine import Recommendation, evaluate
from weighbridge.policy.facts import PolicyFacts
from weighbridge.policy.model import Policy

__all__ = ["PolicyChange", "RuleChange", "diff_policies", "diff_rules"]


@dataclass(frozen=True)
class RuleChange:
    rule_id: str
    change: Literal["added", "removed", "changed"]


@dataclass(frozen=True)
class PolicyChange:
    """One past review under both policies."""

    name: str
    old: Recommendation
    new: Recommendation

    @property
    def release_changed(self) -> bool:
        return self.old.release != self.new.release

    @property
    def rules_added(self) -> tuple[str, ...]:
        before = {r.rule_id for r in self.old.fired_rules}
        return tuple(r.rule_id for r in self.new.fired_rules if r.rule_id not in before)

    @property
    def rules_removed(self) -> tuple[str, ...]:
        after = {r.rule_id for r in self.new.fired_rules}
        return tuple(r.rule_id for r in self.old.fired_rules if r.rule_id not in after)


def diff_rules(old: Policy, new: Policy) -> list[RuleChange]:
    before = {r.id: r for r in old.rules}
    after = {r.id: r for r in new.rules}
    changes = [RuleChange(i, "removed") for i in before if i not in after]
    changes += [RuleChange(i, "added") for i in after if i not in before]
    changes += [RuleChange(i, "changed") for i in after if i in before and after[i] != before[i]]
    return changes


def diff_policies(old: Policy, new: Policy, cases: Sequence[tuple[str, PolicyFacts]]) -> list[PolicyChange]:
    """Every case evaluated under both policies (changed or not; filter on `release_changed`)."""
    return [PolicyChange(name, evaluate(old, facts), evaluate(new, facts)) for name, facts in cases]
