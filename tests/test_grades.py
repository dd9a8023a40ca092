"""The grading rule at its boundaries, interval coverage, and what `settled` promises."""

from __future__ import annotations

import numpy as np
import pytest

from weighbridge.grading.grades import Grade, grade_category, grade_of, ratio_interval
from weighbridge.grading.stats import clopper_pearson


@pytest.mark.parametrize(
    ("rate", "ratio", "expected"),
    [
        (0.001, 50.0, Grade.EXCELLENT),  # the floor wins whatever the ratio
        (0.0, None, Grade.EXCELLENT),
        (0.0011, 3.0001, Grade.POOR),
        (0.2, 3.0, Grade.FAIR),  # r > 3 is Poor, so exactly 3 is Fair
        (0.2, 1.5, Grade.FAIR),  # r ≥ 1.5 is Fair
        (0.2, 1.4999, Grade.GOOD),
        (0.2, 0.5001, Grade.GOOD),
        (0.2, 0.5, Grade.VERY_GOOD),  # r ≤ 0.5 is Very Good
        (0.2, 0.01, Grade.VERY_GOOD),
    ],
)
def test_grade_boundaries(rate: float, ratio: float | None, expected: Grade) -> None:
    assert grade_of(rate, ratio) is expected


def test_grade_above_floor_without_reference_is_refused() -> None:
    with pytest.raises(ValueError):
        grade_of(0.2, None)


def test_conservative_grade_uses_the_upper_ends() -> None:
    # 10/60 vs 20/60: point ratio 0.5 (Very Good), but the interval reaches past 1: only Good-or-worse
    # is supported, so the reported grade is the conservative one and it is not settled.
    g = grade_category(10, 60, 20, 60)
    assert g.point is Grade.VERY_GOOD
    assert g.ratio_high is not None and g.ratio_high > 0.5
    assert g.grade is not None and g.grade < g.point
    assert not g.settled
    # With far more data a ratio of 1/3 settles on Very Good.
    big = grade_category(1000, 6000, 3000, 6000)
    assert big.settled and big.grade is Grade.VERY_GOOD


def test_without_reference_only_the_floor_is_graded() -> None:
    assert grade_category(5, 60).grade is None
    zero = grade_category(0, 60)
    assert zero.point is Grade.EXCELLENT and zero.grade is None and not zero.settled
    assert grade_category(0, 5000).grade is Grade.EXCELLENT


def test_ratio_interval_is_finite_on_zero_and_full_counts() -> None:
    for counts in [(0, 60, 10, 60), (10, 60, 0, 60), (60, 60, 60, 60), (0, 60, 0, 60)]:
        ratio, low, high = ratio_interval(*counts)
        assert 0 < low <= ratio <= high < float("inf")
    assert ratio_interval(60, 60, 60, 60)[1] < 1 < ratio_interval(60, 60, 60, 60)[2]


def test_clopper_pearson_covers_at_least_95_percent_on_simulated_data() -> None:
    rng = np.random.default_rng(7)
    for p in (0.02, 0.1, 0.3, 0.6):
        hits = 0
        trials = 2000
        for k in rng.binomial(60, p, size=trials):
            low, high = clopper_pearson(int(k), 60)
            hits += low <= p <= high
        assert 0.94 <= hits / trials <= 1.0, (p, hits / trials)


def test_ratio_interval_coverage_on_simulated_data() -> None:
    rng = np.random.default_rng(11)
    for p1, p2 in [(0.1, 0.2), (0.3, 0.3), (0.5, 0.25)]:
        trials = 2000
        k1 = rng.binomial(200, p1, size=trials)
        k2 = rng.binomial(200, p2, size=trials)
        hits = 0
        for a, c in zip(k1, k2, strict=True):
            _, low, high = ratio_interval(int(a), 200, int(c), 200)
            hits += low <= p1 / p2 <= high
        # Katz intervals are approximate: near-nominal coverage, checked within a tolerance.
        assert 0.93 <= hits / trials <= 0.99, (p1, p2, hits / trials)
