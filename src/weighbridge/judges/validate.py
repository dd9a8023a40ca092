"""How far a judge agrees with human labels: on the shipped sets, or on anyone's labelled file.

An external file lets others check our judges on their own data: one JSON object per line with
`prompt`, `response`, `label` ("unsafe" or "safe") and optionally `category`. There the positive
class is *unsafe*, compared with the judge's `unsafe` verdict (whatever its own label vocabulary).
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from weighbridge.domain import Judgement
from weighbridge.errors import WeighbridgeError
from weighbridge.judges.base import Judge, judge_batch
from weighbridge.judges.metrics import (
    SPLITS,
    BinaryMetrics,
    Interval,
    binary_metrics,
    bootstrap_intervals,
    load_validation_set,
)

#: The label a judge gives when it could not decide (see `weighbridge.judges.llm`).
UNPARSED = "unparsed"
#: The label a judge gives to what it cannot read (see `weighbridge.judges.harm`); counted unsafe.
NEEDS_REVIEW = "needs_review"


@dataclass(frozen=True)
class LabelledRow:
    prompt: str
    response: str
    unsafe: bool
    category: str | None = None


@dataclass(frozen=True)
class ValidationReport:
    judge: str
    version: str
    dataset: str
    split: str
    positive: str
    overall: BinaryMetrics
    by_category: dict[str, BinaryMetrics] = field(default_factory=dict)
    # Per origin of the rows (e.g. pyrit's large-model answers vs our tiny-model answers): an
    # overall figure can hide that a judge does well on one kind of answer only.
    by_origin: dict[str, BinaryMetrics] = field(default_factory=dict)
    # Rows the judge could not decide (an LLM judge's output off the rubric's format); they count
    # as "not positive" in the figures above.
    unparsed: int = 0
    seconds_per_judgement: float = 0.0
    # 95 % intervals (bootstrap over requests): overall, and per category.
    intervals: dict[str, Interval] = field(default_factory=dict)
    category_intervals: dict[str, dict[str, Interval]] = field(default_factory=dict)
    needs_review: int = 0  # rows the judge could not read and left to a person (counted as unsafe)

    def to_json(self) -> dict[str, Any]:
        return {
            "judge": self.judge,
            "version": self.version,
            "dataset": self.dataset,
            "split": self.split,
            "positive": self.positive,
            "overall": asdict(self.overall),
            "by_category": {k: asdict(v) for k, v in sorted(self.by_category.items())},
            "by_origin": {k: asdict(v) for k, v in sorted(self.by_origin.items())},
            "unparsed": self.unparsed,
            "needs_review": self.needs_review,
            "seconds_per_judgement": round(self.seconds_per_judgement, 4),
            "intervals": {k: asdict(v) for k, v in self.intervals.items()},
            "category_intervals": {
                c: {k: asdict(v) for k, v in i.items()} for c, i in sorted(self.category_intervals.items())
            },
        }


def _measure(
    judge: Judge,
    dataset: str,
    split: str,
    positive: str,
    rows: Sequence[tuple[str, str, bool, str | None, str | None]],
    is_positive: Callable[[Judgement], bool],
) -> ValidationReport:
    """Judge (prompt, response, truth, category, origin) rows; score `is_positive(verdict)` against truth.

    Intervals resample requests (rows with the same prompt belong together), see `bootstrap_intervals`.
    """
    start = time.perf_counter()
    verdicts = judge_batch(judge, [(prompt, response) for prompt, response, *_ in rows])
    elapsed = time.perf_counter() - start
    pairs: list[tuple[bool, bool]] = []
    groups: list[str] = []
    by_category: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
    by_category_groups: dict[str, list[str]] = defaultdict(list)
    by_origin: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
    for (prompt, _, truth, category, origin_name), verdict in zip(rows, verdicts, strict=True):
        pair = (truth, is_positive(verdict))
        pairs.append(pair)
        groups.append(prompt)
        if category:
            by_category[category].append(pair)
            by_category_groups[category].append(prompt)
        if origin_name:
            by_origin[origin_name].append(pair)
    return ValidationReport(
        judge.name,
        judge.version,
        dataset,
        split,
        positive,
        binary_metrics(pairs),
        {cat: binary_metrics(p) for cat, p in by_category.items()},
        {origin: binary_metrics(p) for origin, p in by_origin.items()} if len(by_origin) > 1 else {},
        sum(v.label == UNPARSED for v in verdicts),
        elapsed / len(rows) if rows else 0.0,
        bootstrap_intervals(pairs, groups),
        {cat: bootstrap_intervals(p, by_category_groups[cat]) for cat, p in by_category.items()},
        sum(v.label == NEEDS_REVIEW for v in verdicts),
    )


def origin(source: str) -> str:
    """Who made a row, from its ``source``: "pyrit 1.1.0: <file> ..." -> "pyrit 1.1.0"."""
    return source.split(":", 1)[0].split(" (", 1)[0].strip()


def validate_split(judge: Judge, split: str, limit: int | None = None) -> ValidationReport:
    """The judge on one split of its shipped labelled set (only the first `limit` rows, if given)."""
    rows = load_validation_set(judge.validation_set, split=split)[:limit]
    labelled = [(r.prompt, r.response, r.label == judge.positive_label, r.category, origin(r.source)) for r in rows]
    return _measure(
        judge,
        judge.validation_set,
        split,
        judge.positive_label,
        labelled,
        lambda verdict: verdict.label == judge.positive_label,
    )


#: Labelled sets a stance-trained judge was never tuned on, measured by origin (large chat models'
#: answers from pyrit, tiny models' answers labelled for weighbridge).
EVALUATION_ONLY = "harm"


def validate_shipped(judge: Judge, limit: int | None = None) -> list[ValidationReport]:
    """The judge on its shipped labelled data.

    A judge trained on the stance set is measured on the rows it never saw: the evaluation-only
    set (`EVALUATION_ONLY`, both of its splits, reported by origin). Its figures on the final stance
    test set are not re-measured here: they were recorded once (`weighbridge judges score`). Other
    judges: each split of their set (public: tuned on; heldout: not).

    Args:
        limit: only the first `limit` rows of each split (in file order), for slow judges.
    """
    if judge.validation_set == "stance":
        return [validate_evaluation_only(judge, limit)]
    return [validate_split(judge, split, limit) for split in SPLITS]


def validate_evaluation_only(judge: Judge, limit: int | None = None, split: str | None = None) -> ValidationReport:
    """The judge on the evaluation-only set (every row, or one split of it), with figures per origin."""
    rows = load_validation_set(EVALUATION_ONLY, split)[:limit]
    labelled = [(r.prompt, r.response, r.label == "unsafe", r.category, origin(r.source)) for r in rows]
    name = f"{split or 'all'} (evaluation only)"
    return _measure(judge, EVALUATION_ONLY, name, "unsafe", labelled, lambda v: v.unsafe)


def load_labelled_file(path: Path) -> list[LabelledRow]:
    if not path.is_file():
        raise WeighbridgeError(f"No such labelled file: {path}", "Give a .jsonl file with prompt, response, label")
    rows = []
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
                label = str(raw["label"]).strip().lower()
                if label not in ("unsafe", "safe"):
                    raise ValueError(f"label is {raw['label']!r}, expected 'unsafe' or 'safe'")
                category = raw.get("category")
                rows.append(
                    LabelledRow(
                        str(raw["prompt"]), str(raw["response"]), label == "unsafe", str(category) if category else None
                    )
                )
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise WeighbridgeError(
                    f"{path} line {number} is not a labelled row ({exc})",
                    'Each line must be a JSON object like {"prompt": ..., "response": ..., "label": "unsafe"}',
                ) from exc
    if not rows:
        raise WeighbridgeError(f"{path} holds no labelled rows", "Add one JSON object per line")
    return rows


def validate_rows(judge: Judge, rows: Sequence[LabelledRow], dataset: str) -> ValidationReport:
    labelled = [(r.prompt, r.response, r.unsafe, r.category, None) for r in rows]
    return _measure(judge, dataset, "all", "unsafe", labelled, lambda verdict: verdict.unsafe)
