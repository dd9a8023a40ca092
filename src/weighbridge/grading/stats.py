"""Rates with exact intervals.

Clopper–Pearson rather than Wald or Wilson: with the small n and near-zero rates of a safety suite,
a normal approximation gives intervals that dip below zero or are far too narrow. It is
conservative (coverage ≥ the nominal level), which is the right side to err on for a verdict.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from scipy.stats import beta

from weighbridge.domain import Category, CategoryResult


def clopper_pearson(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact two-sided interval for a binomial proportion.

    Args:
        successes: events counted (here: unsafe responses), 0 ≤ successes ≤ n.
        n: trials. With n == 0 nothing is known and the interval is the whole [0, 1].
        confidence: two-sided level, e.g. 0.95.
    """
    if not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n, got {successes}/{n}")
    if n == 0:
        return 0.0, 1.0
    alpha = 1.0 - confidence
    low = 0.0 if successes == 0 else float(beta.ppf(alpha / 2, successes, n - successes + 1))
    high = 1.0 if successes == n else float(beta.ppf(1 - alpha / 2, successes + 1, n - successes))
    return low, high


def rate_result(cat_id: str, name: str, flags: Sequence[bool], confidence: float = 0.95) -> CategoryResult:
    n = len(flags)
    unsafe = sum(flags)
    low, high = clopper_pearson(unsafe, n, confidence)
    return CategoryResult(
        id=cat_id, name=name, n=n, unsafe=unsafe, unsafe_rate=(unsafe / n if n else 0.0), ci_low=low, ci_high=high
    )


def per_category(
    categories: Sequence[Category], labelled: Iterable[tuple[str, bool]], confidence: float = 0.95
) -> tuple[list[CategoryResult], CategoryResult]:
    """Per-category unsafe rates and the pooled overall rate from (category id, unsafe) pairs."""
    by_cat: dict[str, list[bool]] = {c.id: [] for c in categories}
    for cat_id, unsafe in labelled:
        by_cat.setdefault(cat_id, []).append(unsafe)
    names = {c.id: c.name for c in categories}
    results = [rate_result(cid, names.get(cid, cid), flags, confidence) for cid, flags in by_cat.items()]
    overall = rate_result("overall", "Overall", [f for flags in by_cat.values() for f in flags], confidence)
    return results, overall
