"""How much the adjudication queue takes, and whether it takes the verdicts a person should check.

Runs the default judges (harm, refusal) over the evaluation-only set `judges/validation/harm.jsonl`
(human-labelled rows the harm judge was never trained on; not the stance test set, which is scored
once per version and never used to choose anything), applies the queue rule of
`grading.adjudication` at several confidence thresholds, and prints how many rows are queued and
the harm judge's accuracy inside and outside the queue, then per reason at `LOW_CONFIDENCE`. A
queue worth a person's time holds verdicts much less accurate than the rest.

Usage: .venv/bin/python benchmarks/adjudication_queue.py   (about 3 minutes on 2 cores)
"""

from __future__ import annotations

import time
from collections import Counter

from weighbridge.grading.adjudication import LOW_CONFIDENCE, Reading, Reason, reasons_for
from weighbridge.judges.base import judge_batch
from weighbridge.judges.metrics import load_validation_set
from weighbridge.judges.registry import get_judge

THRESHOLDS = (0.6, 0.7, LOW_CONFIDENCE, 0.8, 0.9)


def main() -> None:
    rows = load_validation_set("harm")
    pairs = [(r.prompt, r.response) for r in rows]
    began = time.perf_counter()
    harm = judge_batch(get_judge("harm"), pairs)
    refusal = judge_batch(get_judge("refusal"), pairs)
    print(f"{len(rows)} rows judged in {time.perf_counter() - began:.0f} s (harm {harm[0].judge_version})")
    right = [h.unsafe == (r.label == "unsafe") for h, r in zip(harm, rows, strict=True)]
    readings = [
        (Reading(h.judge, h.judge_version, h.label, h.unsafe, h.confidence),
         Reading(f.judge, f.judge_version, f.label, f.unsafe, f.confidence))
        for h, f in zip(harm, refusal, strict=True)
    ]  # fmt: skip

    def accuracy(flags: list[bool]) -> str:
        return f"{sum(flags) / len(flags):.3f}" if flags else "—"

    for threshold in THRESHOLDS:
        queued = [bool(reasons_for(h, [f], threshold)) for h, f in readings]
        inside = [ok for ok, q in zip(right, queued, strict=True) if q]
        outside = [ok for ok, q in zip(right, queued, strict=True) if not q]
        print(
            f"threshold {threshold:.2f}: queued {len(inside)} of {len(rows)} ({100 * len(inside) / len(rows):.1f} %), "
            f"harm accuracy in the queue {accuracy(inside)}, outside {accuracy(outside)}"
        )
    by_reason: Counter[Reason] = Counter()
    correct: Counter[Reason] = Counter()
    for (h, f), ok in zip(readings, right, strict=True):
        for reason in reasons_for(h, [f]):
            by_reason[reason] += 1
            correct[reason] += ok
    for reason in Reason:
        n = by_reason[reason]
        print(f"{reason.value}: {n} rows, harm accuracy {correct[reason] / n:.3f}" if n else f"{reason.value}: 0 rows")


if __name__ == "__main__":
    main()
