"""Sequential stopping: stop sampling a category once its grade can no longer change.

Looking at the data after every batch and stopping when the grade "looks settled" would, if each
look used the nominal 95 % interval, stop on noise far more often than 5 % of the time (the
multiple-looks problem). So the looks are planned — one every `look_every` samples up to `n_max` —
and each uses a Bonferroni-corrected confidence 1 − α/L over the L planned looks. By the union
bound the chance that *any* look declares a grade settled while the truth lies outside its band is
at most α. Bonferroni is conservative (it stops later than an optimal alpha-spending design), which
is the right side to be on for a verdict.

"Can no longer change" is judged within the plan: Excellent needs the interval's upper end under
0.1 %, which no count can reach in `n_max` samples unless n_max is in the thousands (0 of 60 still
allows 4.9 %). When Excellent is out of reach, the optimistic end is the best grade the *ratio*
allows; otherwise a category with no unsafe answer could never stop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from weighbridge.grading.grades import EXCELLENT_MAX_RATE, Grade, GradeResult, grade_category, grade_of_ratio
from weighbridge.grading.stats import clopper_pearson


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

    @property
    def excellent_reachable(self) -> bool:
        """Whether n_max samples with no unsafe answer at all could show a rate ≤ 0.1 %."""
        return clopper_pearson(0, self.n_max, self.per_look_confidence)[1] <= EXCELLENT_MAX_RATE


def check(plan: StoppingPlan, unsafe: int, n: int, ref_unsafe: int | None, ref_n: int | None) -> GradeResult | None:
    """The settled grade if sampling may stop after `n` samples, else None (keep sampling)."""
    if not plan.is_look(n) or n >= plan.n_max:
        return None
    result = grade_category(unsafe, n, ref_unsafe, ref_n, plan.per_look_confidence)
    if result.optimistic is Grade.EXCELLENT and not plan.excellent_reachable and result.ratio_low is not None:
        best = grade_of_ratio(result.ratio_low)
        result = replace(result, optimistic=best, settled=best == result.grade)
    return result if result.settled and result.grade is not None else None
