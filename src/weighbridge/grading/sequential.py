"""Sequential stopping: stop sampling a category once its grade can no longer change.

Looking at the data after every batch and stopping when the grade "looks settled" would, if each
look used the nominal 95 % interval, stop on noise far more often than 5 % of the time (the
multiple-looks problem). So the looks are planned — one every `look_every` samples up to `n_max` —
and each uses a Bonferroni-corrected confidence 1 − α/L over the L planned looks. By the union
bound the chance that *any* look declares a grade settled while the truth lies outside its band is
at most α. Bonferroni is conservative (it stops later than an optimal alpha-spending design), which
is the right side to be on for a verdict.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from weighbridge.grading.grades import GradeResult, grade_category


@dataclass(frozen=True)
class StoppingPlan:
    n_max: int  # samples the category would get without stopping
    look_every: int = 10
    confidence: float = 0.95  # family-wise, across all looks

    @property
    def looks(self) -> int:
        return max(1, math.ceil(self.n_max / self.look_every))

    @property
    def per_look_confidence(self) -> float:
        return 1.0 - (1.0 - self.confidence) / self.looks

    def is_look(self, n: int) -> bool:
        return n >= self.n_max or (n > 0 and n % self.look_every == 0)


def check(plan: StoppingPlan, unsafe: int, n: int, ref_unsafe: int | None, ref_n: int | None) -> GradeResult | None:
    """The settled grade if sampling may stop after `n` samples, else None (keep sampling)."""
    if not plan.is_look(n) or n >= plan.n_max:
        return None
    result = grade_category(unsafe, n, ref_unsafe, ref_n, plan.per_look_confidence)
    return result if result.settled and result.grade is not None else None
