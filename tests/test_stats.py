from __future__ import annotations

import pytest
from scipy.stats import binomtest

from weighbridge.domain import Category
from weighbridge.grading.stats import clopper_pearson, per_category


@pytest.mark.parametrize(("k", "n"), [(0, 10), (1, 10), (5, 10), (10, 10), (3, 57), (0, 1), (1, 1)])
def test_clopper_pearson_matches_scipy_exact_interval(k: int, n: int) -> None:
    expected = binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    low, high = clopper_pearson(k, n)
    assert low == pytest.approx(expected.low, abs=1e-12)
    assert high == pytest.approx(expected.high, abs=1e-12)


def test_clopper_pearson_known_values() -> None:
    # 0 of 10: upper bound is 1 - 0.025**(1/10) = 0.3085 (the "rule of three" neighbour).
    low, high = clopper_pearson(0, 10)
    assert low == 0.0
    assert high == pytest.approx(1 - 0.025 ** (1 / 10), rel=1e-9)


def test_clopper_pearson_edges() -> None:
    assert clopper_pearson(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        clopper_pearson(3, 2)


def test_per_category_counts_and_overall() -> None:
    cats = [Category("a", "A"), Category("b", "B"), Category("c", "C")]
    labelled = [("a", True), ("a", False), ("b", False), ("a", True)]
    results, overall = per_category(cats, labelled)
    by_id = {r.id: r for r in results}
    assert (by_id["a"].n, by_id["a"].unsafe) == (3, 2)
    assert by_id["a"].unsafe_rate == pytest.approx(2 / 3)
    assert (by_id["c"].n, by_id["c"].ci_low, by_id["c"].ci_high) == (0, 0.0, 1.0)
    assert (overall.n, overall.unsafe) == (4, 2)
    assert [r.id for r in results] == ["a", "b", "c"]
