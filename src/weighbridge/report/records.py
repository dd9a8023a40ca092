"""What a report v1 carries beyond rates: grades against references, adaptive savings, transcripts.

Plain frozen records handed to `build_report` by the review service; the report layer never grades
or samples anything itself, it only shows what it is given. Field names are the `report.json` names,
so `dataclasses.asdict` is the JSON form.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from weighbridge.domain import CategoryResult
from weighbridge.grading.stats import clopper_pearson

__all__ = ["GRADES", "AdaptiveInfo", "CategoryGrade", "Comparison", "ReferenceInfo", "Transcript", "pooled"]

# The five-point scale, best first, as `grading.grades.Grade.label` spells it.
GRADES: Final = ("Excellent", "Very Good", "Good", "Fair", "Poor")


@dataclass(frozen=True)
class Comparison:
    """One category (or the overall pool) of the model against one reference.

    `n`, `unsafe`, `unsafe_rate`, `ci_low`, `ci_high` are the reference's own sample count, unsafe
    count, rate and Clopper–Pearson interval; `ratio` is model rate / reference rate with its Katz
    interval (see `grading/grades.py`); `grade` is the grade against this reference alone.
    """

    reference: str
    n: int
    unsafe: int
    unsafe_rate: float
    ci_low: float
    ci_high: float
    ratio: float
    ratio_low: float
    ratio_high: float
    grade: str | None
    settled: bool


@dataclass(frozen=True)
class CategoryGrade:
    """The headline grade of a category: against the primary (first) reference, else absolute.

    `basis` is `"reference:<name>"` or `"absolute"`; `comparisons` holds one entry per reference in
    the order the reviewer named them, so the report can show every reference, not only the first.
    """

    grade: str | None
    basis: str
    settled: bool
    comparisons: tuple[Comparison, ...] = ()
    # What the evidence supports: the grade when settled, else the span "Poor – Good" (worst first).
    grade_range: str | None = None
    # More items that would settle an unsettled grade if the rate stayed where it is (None: settled,
    # or not within 16× today's items).
    items_to_settle: int | None = None
    # The model's unsafe rate corrected for the primary judge's measured error, with the interval
    # carrying that error too (`grading.correction`); None when the judge has no measured error.
    corrected: tuple[float, float, float] | None = None
    # Why the grade was taken on raw rates although the judge has a measured error (the count could
    # not have come from that error: `grading.correction.unfit`); None when corrected or no error.
    correction_note: str | None = None


@dataclass(frozen=True)
class Transcript:
    """One example exchange for the drill-down. `response` is untrusted model output."""

    item_id: str
    category: str
    prompt: str
    response: str
    unsafe: bool
    labels: Mapping[str, str]  # judge name -> label


@dataclass(frozen=True)
class AdaptiveInfo:
    """What sequential stopping saved.

    Args:
        confidence: family-wise confidence the stopping rule used.
        planned: samples the run would have asked without stopping.
        asked: samples actually asked.
        saved: `planned - asked`.
        stopped: category id -> the n at which sampling stopped, for the categories that stopped early.
        planned_by_category: category id -> samples planned for it, when known; lets the report show
            planned / asked / saved per category rather than only in total.
    """

    confidence: float
    planned: int
    asked: int
    saved: int
    stopped: Mapping[str, int]
    planned_by_category: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ReferenceInfo:
    """A pinned reference whose stored results the grades compare against.

    `digest` is the model manifest digest; `params` the generation parameters and target settings
    it was pinned with; `reused` says the results came from the store rather than a fresh run.
    """

    name: str
    title: str
    digest: str
    format: str
    params: Mapping[str, Any]
    suite_version: str
    suite_hash: str
    run_id: str
    reused: bool


def pooled(categories: Sequence[CategoryResult], *, id: str = "overall", name: str = "Overall") -> CategoryResult:
    """All categories pooled into one result, with its exact Clopper–Pearson 95 % interval.

    Pooling weights every sample equally, so a category with more items counts for more. With no
    samples at all the rate is 0 and the interval is the whole of [0, 1]: nothing is known.
    """
    n = sum(c.n for c in categories)
    unsafe = sum(c.unsafe for c in categories)
    low, high = clopper_pearson(unsafe, n)
    return CategoryResult(id, name, n, unsafe, unsafe / n if n else 0.0, low, high)
