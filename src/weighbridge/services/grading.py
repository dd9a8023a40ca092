"""From stored counts to the report's grade blocks: comparisons, headline grades, examples.

The rules live in `grading.grades` (the scale, the intervals, conservative vs optimistic ends);
this module only applies them to every category and to the pooled overall line, once per
reference, and picks the example transcripts a reader can drill into.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from weighbridge.evals.records import Metric
from weighbridge.grading.correction import NO_HUMAN, JudgeError, corrected_grade, unfit
from weighbridge.grading.grades import GradeResult, grade_category, grade_range, items_to_settle
from weighbridge.grading.stats import clopper_pearson
from weighbridge.report.records import CategoryGrade, Comparison, Transcript
from weighbridge.store.schema import SampleRow

OVERALL = "overall"
Counts = Mapping[str, tuple[int, int]]  # category id -> (unsafe, n)


def counts_of(verdicts: Iterable[tuple[str, bool]]) -> dict[str, tuple[int, int]]:
    """(unsafe, n) per category from (category, unsafe) verdicts."""
    counts: dict[str, tuple[int, int]] = {}
    for category, unsafe in verdicts:
        u, n = counts.get(category, (0, 0))
        counts[category] = (u + int(unsafe), n + 1)
    return counts


def worse_events(samples: Sequence[SampleRow], metric: Metric | None) -> list[tuple[str, bool]]:
    """(category, on the worse side) per sample for a suite's metric: what the grades count.

    Grading compares rates where higher is worse, so for a metric where lower is worse (an
    accuracy) the counted event is the complement (a wrong answer). A sample without a score from
    the metric's scorer counts as worse: a missing reading must not pass for a good one.
    """
    if metric is None:
        raise ValueError("a suite without a metric is graded on the primary judge's verdicts")
    out: list[tuple[str, bool]] = []
    for s in samples:
        score = next((j for j in s.judgements if j.judge == metric.scorer), None)
        counted = score is not None and metric.counts(score)
        out.append((s.category, counted if metric.worse == "higher" else score is None or not counted))
    return out


def with_overall(counts: Counts) -> dict[str, tuple[int, int]]:
    """`counts` plus the pooled `overall` line (every sample weighs the same)."""
    pooled = (sum(u for u, _ in counts.values()), sum(n for _, n in counts.values()))
    return {**counts, OVERALL: pooled}


def _label(result: GradeResult) -> str | None:
    return result.grade.label if result.grade is not None else None


def grade_all(
    model: Counts,
    references: Sequence[tuple[str, Counts]],
    confidence: float = 0.95,
    error: JudgeError | None = None,
    human: Counts | None = None,
    reference_human: Mapping[str, Counts] | None = None,
) -> dict[str, CategoryGrade]:
    """Per category (and overall): one comparison per reference; the headline grade is the one
    against the first (primary) reference, or the absolute view when there is none.

    With `error` (the primary judge's validation counts), every rate is corrected for the judge's
    sensitivity and specificity and the grades are taken on the corrected intervals
    (`grading.correction`); the raw counts stay in the report beside them. `human` (and, per
    reference name, `reference_human`) are the (unsafe, n) within each count that a person
    labelled (`weighbridge adjudicate`): the correction leaves those as they are.
    """
    model = with_overall(model)
    refs = [(name, with_overall(counts)) for name, counts in references]
    mine_human = with_overall(human or {})
    refs_human = {name: with_overall(counts) for name, counts in (reference_human or {}).items()}

    def grader(
        ref: tuple[int, int] | None, category: str, reference: str | None = None
    ) -> Callable[[int, int], GradeResult]:
        ref_unsafe, ref_n = ref if ref is not None else (None, None)
        if error is not None:
            own = mine_human.get(category, NO_HUMAN)
            theirs = refs_human.get(reference or "", {}).get(category, NO_HUMAN)
            return lambda u, n: corrected_grade(u, n, ref_unsafe, ref_n, error, confidence, human=own, ref_human=theirs)
        return lambda u, n: grade_category(u, n, ref_unsafe, ref_n, confidence)

    grades: dict[str, CategoryGrade] = {}
    for category, (unsafe, n) in model.items():
        comparisons = []
        head: GradeResult | None = None
        for name, counts in refs:
            if category not in counts:
                continue
            ref_unsafe, ref_n = counts[category]
            result = grader((ref_unsafe, ref_n), category, name)(unsafe, n)
            assert result.ratio is not None and result.ratio_low is not None and result.ratio_high is not None
            ref_low, ref_high = clopper_pearson(ref_unsafe, ref_n, confidence)
            if name == refs[0][0]:
                head = result
            comparisons.append(
                Comparison(
                    reference=name,
                    n=ref_n,
                    unsafe=ref_unsafe,
                    unsafe_rate=ref_unsafe / ref_n if ref_n else 0.0,
                    ci_low=ref_low,
                    ci_high=ref_high,
                    ratio=result.ratio,
                    ratio_low=result.ratio_low,
                    ratio_high=result.ratio_high,
                    grade=_label(result),
                    settled=result.settled,
                )
            )
        primary = refs[0][1].get(category) if refs and head is not None else None
        graded = head if head is not None else grader(None, category)(unsafe, n)
        basis = f"reference:{refs[0][0]}" if head is not None else "absolute"
        first = refs[0][0] if primary is not None else None
        to_settle = None if graded.settled else items_to_settle(grader(primary, category, first), unsafe, n)
        note = _correction_note(error, (unsafe, n), mine_human.get(category, NO_HUMAN), confidence)
        if note is None and error is not None and primary is not None and first is not None:
            ref_note = _correction_note(error, primary, refs_human.get(first, {}).get(category, NO_HUMAN), confidence)
            note = f"reference {first}: {ref_note}" if ref_note else None
        # With `error` the grading already ran on the corrected rate: read it, don't compute it again.
        corrected = (graded.rate, graded.rate_low, graded.rate_high) if error is not None and note is None else None
        grades[category] = CategoryGrade(
            _label(graded), basis, graded.settled, tuple(comparisons), grade_range(graded), to_settle, corrected, note
        )
    return grades


def _correction_note(
    error: JudgeError | None, count: tuple[int, int], human: tuple[int, int], confidence: float
) -> str | None:
    """Why a count was not corrected for the judge's error (None: corrected, or nothing to correct with)."""
    if error is None:
        return None
    note = unfit(count[0], count[1], error, confidence, human)
    return f"not corrected ({note}); graded on the raw rates" if note else None


def transcripts(
    samples: Sequence[SampleRow],
    primary: str,
    human: Mapping[str, str] | None = None,
    per_category: int = 3,
    *,
    withhold_text: bool = False,
) -> dict[str, tuple[Transcript, ...]]:
    """A few exchanges per category for the drill-down: unsafe ones first (what a reviewer must
    read), then the rest, each in journal order so the pick is stable. `human` (item id -> a
    person's label, `weighbridge adjudicate`) decides unsafe where given and is shown as the
    `person` label beside the judges'. `withhold_text` (a private suite) keeps the item ids and
    verdicts but leaves prompt and response empty: the answer would give the held-out prompt away."""
    human = human or {}
    by_category: dict[str, list[SampleRow]] = {}
    for s in samples:
        by_category.setdefault(s.category, []).append(s)

    def unsafe(s: SampleRow) -> bool:
        if s.item_id in human:
            return human[s.item_id] == "unsafe"
        return any(j.judge == primary and j.unsafe for j in s.judgements)

    out: dict[str, tuple[Transcript, ...]] = {}
    for category, rows in by_category.items():
        picked = sorted(rows, key=lambda s: (not unsafe(s), s.seq))[:per_category]
        out[category] = tuple(
            Transcript(
                item_id=s.item_id,
                category=category,
                prompt="" if withhold_text else s.prompt,
                response="" if withhold_text else s.response,
                unsafe=unsafe(s),
                labels={j.judge: j.label for j in s.judgements}
                | ({"person": str(human[s.item_id])} if s.item_id in human else {}),
            )
            for s in picked
        )
    return out
