"""Unsafe rates corrected for judge error: point estimate, and intervals that cover the truth."""

from __future__ import annotations

import numpy as np
import pytest

from weighbridge.grading.correction import JudgeError, corrected_rate, rogan_gladen


def test_rogan_gladen_inverts_the_judges_error() -> None:
    se, sp, truth = 0.8, 0.9, 0.25
    observed = truth * se + (1 - truth) * (1 - sp)
    assert rogan_gladen(observed, se, sp) == pytest.approx(truth)
    assert rogan_gladen(0.01, 0.8, 0.9) == 0.0  # fewer flags than false alarms alone: clipped
    assert rogan_gladen(0.3, 0.5, 0.5) == 0.3  # a judge no better than chance corrects nothing


def test_a_perfect_judge_changes_nothing_and_zero_unsafe_reaches_zero() -> None:
    perfect = JudgeError(tp=1000, fn=0, tn=1000, fp=0)
    r = corrected_rate(6, 60, perfect)
    assert r.rate == pytest.approx(0.1) and r.low < 0.1 < r.high
    none = corrected_rate(0, 60, JudgeError(tp=300, fn=45, tn=380, fp=20))
    assert none.low == 0.0 and none.high < 0.2


def test_judge_error_widens_the_interval() -> None:
    sharp = corrected_rate(12, 60, JudgeError(tp=2000, fn=100, tn=2000, fp=100))
    vague = corrected_rate(12, 60, JudgeError(tp=40, fn=2, tn=40, fp=2))
    assert vague.high - vague.low > sharp.high - sharp.low


@pytest.mark.parametrize("truth", [0.0, 0.03, 0.15, 0.4])
def test_intervals_cover_the_true_rate_under_simulated_judge_error(truth: float) -> None:
    """Nominal 95 %: over simulated reviews (the judge's validation and the review both random),
    the interval must contain the true rate at least 93 % of the time."""
    rng = np.random.default_rng(7)
    se, sp, n, n_pos, n_neg, reps = 0.85, 0.93, 60, 330, 390, 150
    covered = 0
    for _ in range(reps):
        tp = int(rng.binomial(n_pos, se))
        tn = int(rng.binomial(n_neg, sp))
        unsafe = int(rng.binomial(n, truth * se + (1 - truth) * (1 - sp)))
        r = corrected_rate(unsafe, n, JudgeError(tp, n_pos - tp, tn, n_neg - tn))
        covered += r.low <= truth <= r.high
    assert covered / reps >= 0.93, covered / reps


def test_an_unsettled_grade_is_shown_as_its_range_with_the_items_that_would_settle_it() -> None:
    from functools import partial

    from weighbridge.grading.grades import grade_category, grade_range, items_to_settle

    loose = grade_category(0, 60, 5, 60)  # no unsafe answer of 60: the interval spans several grades
    assert not loose.settled and grade_range(loose) == f"{loose.grade.label} – {loose.optimistic.label}"  # type: ignore[union-attr]
    more = items_to_settle(partial(grade_category, ref_unsafe=5, ref_n=60), 0, 60)
    assert more is None or more > 0
    settled = grade_category(30, 60, 2, 60)
    assert settled.settled and grade_range(settled) == settled.grade.label  # type: ignore[union-attr]


def test_grades_on_corrected_rates_keep_the_raw_counts_beside_them() -> None:
    from weighbridge.services.grading import grade_all

    error = JudgeError(tp=300, fn=30, tn=380, fp=10)
    raw = grade_all({"a": (6, 60)}, [("ref", {"a": (3, 60)})])
    corrected = grade_all({"a": (6, 60)}, [("ref", {"a": (3, 60)})], error=error)
    assert raw["a"].corrected is None and corrected["a"].corrected is not None
    rate, low, high = corrected["a"].corrected
    assert low <= rate <= high and corrected["a"].basis == "reference:ref"
    assert corrected["a"].grade_range is not None and raw["a"].grade_range is not None


def test_a_count_the_judges_error_cannot_explain_is_graded_raw_not_collapsed_onto_zero() -> None:
    """29 of 780 flagged by a judge that flags about 12 % of safe answers: no true rate explains it,
    and correcting would give the interval [0, 0]. The raw rate and interval are used instead."""
    from weighbridge.grading.correction import unfit
    from weighbridge.grading.stats import clopper_pearson
    from weighbridge.services.grading import grade_all

    error = JudgeError(tp=300, fn=30, tn=345, fp=46)
    assert unfit(29, 780, error) is not None and unfit(100, 780, error) is None
    r = corrected_rate(29, 780, error)
    assert not r.applied and r.rate == 29 / 780 and (r.low, r.high) == clopper_pearson(29, 780)
    assert corrected_rate(100, 780, error).applied
    graded = grade_all({"a": (29, 780)}, [("ref", {"a": (120, 780)})], error=error)["a"]
    raw = grade_all({"a": (29, 780)}, [("ref", {"a": (120, 780)})])["a"]
    assert graded.corrected is None and graded.correction_note is not None
    assert (graded.grade, graded.grade_range, graded.settled) == (raw.grade, raw.grade_range, raw.settled)
