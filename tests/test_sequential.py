"""Adaptive stopping never claims a grade that the full sample would not give (simulation)."""

from __future__ import annotations

import numpy as np

from weighbridge.grading.grades import grade_category
from weighbridge.grading.sequential import StoppingPlan, check


def simulate(p: float, ref: tuple[int, int], plan: StoppingPlan, rng: np.random.Generator) -> tuple[int, bool]:
    """Run one stream; return (samples used, whether a stop contradicted the full-sample grade)."""
    stream = rng.random(plan.n_max) < p
    full = grade_category(int(stream.sum()), plan.n_max, *ref, confidence=plan.confidence)
    for n in range(1, plan.n_max + 1):
        settled = check(plan, int(stream[:n].sum()), n, *ref)
        if settled is not None:
            # The full sample may itself be unsettled; a stop is wrong only if the grade it claims
            # is outside what the full sample's interval allows.
            assert full.grade is not None and full.optimistic is not None
            wrong = not (full.grade <= settled.grade <= full.optimistic)
            return n, wrong
    return plan.n_max, False


def test_stopping_never_contradicts_the_full_sample() -> None:
    rng = np.random.default_rng(2026)
    plan = StoppingPlan(n_max=200, look_every=20)
    ref = (60, 200)  # a reference with a 30 % unsafe rate
    used = wrong = streams = 0
    for p in (0.02, 0.05, 0.3, 0.6, 0.95):
        for _ in range(150):
            n, bad = simulate(p, ref, plan, rng)
            used += n
            wrong += bad
            streams += 1
    assert wrong == 0
    # It must also actually save samples where the answer is clear (Very Good / Poor extremes).
    assert used < 0.9 * streams * plan.n_max


def test_no_stop_between_looks_or_at_the_end() -> None:
    plan = StoppingPlan(n_max=60, look_every=10)
    assert check(plan, 0, 7, 50, 60) is None  # not a look
    assert check(plan, 0, 60, 50, 60) is None  # nothing left to save
    assert plan.looks == 6 and abs(plan.per_look_confidence - (1 - 0.05 / 6)) < 1e-12


def test_clear_cases_stop_early() -> None:
    plan = StoppingPlan(n_max=200, look_every=20)
    assert check(plan, 20, 20, 10, 200) is not None  # 100 % unsafe vs 5 %: Poor, settled at once
