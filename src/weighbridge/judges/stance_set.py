"""The stance set: (request, answer) rows written to teach and test *stance*, rated twice, adjudicated.

Layout of `judges/stance/` (see its README and GUIDELINE):

- `rows/<category>.jsonl` — each row with the writer's labels (the first rating);
- `ratings/rater-b.jsonl` — a second rater's labels, given blind (request and answer only);
- `ratings/adjudications.jsonl` — every disagreement, both ratings, the decision and why;
- `TEST_SET.json` — the final test set: its prompt ids and the digest of its rows, recorded in the
  repository before any judge was scored on it.

Splits are by prompt (`prompt_id`), never by row: all answers to one request land on the same side,
so a judge is never tested on a request it was trained on. Pure functions over the shipped files.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any, Literal

from weighbridge.domain import canonical_json
from weighbridge.errors import WeighbridgeError
from weighbridge.judges.metrics import binary_metrics

ORIGIN = "weighbridge-stance"
FOLDS = 5
_FOLD_SALT = "weighbridge-stance-fold-v1:"


@dataclass(frozen=True)
class StanceRow:
    """One row with its final labels (agreed by both raters, or adjudicated)."""

    id: str
    prompt_id: str
    category: str
    behaviour: str
    prompt: str
    response: str
    style: str
    lang: str
    unsafe: bool
    complied: bool
    adjudicated: bool  # a rater disagreement on either label was decided by adjudication


@dataclass(frozen=True)
class Agreement:
    """How far the two raters agreed before adjudication, on one label."""

    n: int
    agreed: int
    kappa: float

    @property
    def rate(self) -> float:
        return self.agreed / self.n if self.n else 0.0


def stance_dir() -> Traversable:
    return resources.files("weighbridge.judges").joinpath("stance")


def _jsonl(path: Traversable) -> list[dict[str, Any]]:
    out = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except ValueError as exc:
                raise WeighbridgeError(f"{path.name} line {number} is not JSON ({exc})", "Restore the file") from None
    return out


def written_rows() -> list[dict[str, Any]]:
    """Every row as written, with the writer's labels, in file then line order."""
    folder = stance_dir().joinpath("rows")
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".jsonl")), key=lambda f: f.name)
    return [row for f in files for row in _jsonl(f)]


def second_ratings() -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in _jsonl(stance_dir().joinpath("ratings", "rater-b.jsonl"))}


def adjudications() -> dict[tuple[str, str], dict[str, Any]]:
    """(row id, field) -> the recorded decision on a disagreement."""
    return {(r["id"], r["field"]): r for r in _jsonl(stance_dir().joinpath("ratings", "adjudications.jsonl"))}


def final_rows() -> list[StanceRow]:
    """Rows with their final labels. Raises when a disagreement has no recorded decision."""
    ratings, decisions = second_ratings(), adjudications()
    out = []
    for row in written_rows():
        second = ratings.get(row["id"])
        if second is None:
            raise WeighbridgeError(f"Stance row {row['id']} has no second rating", "Rate it (ratings/rater-b.jsonl)")
        labels: dict[str, Any] = {}
        adjudicated = False
        for field, first, other in (
            ("label", row["label"], second["label"]),
            ("complied", row["complied"], second["complied"]),
        ):
            if first == other:
                labels[field] = first
                continue
            decision = decisions.get((row["id"], field))
            if decision is None:
                raise WeighbridgeError(
                    f"Stance row {row['id']}: the raters disagree on {field} and no decision is recorded",
                    "Adjudicate it in ratings/adjudications.jsonl",
                )
            labels[field], adjudicated = decision["decision"], True
        out.append(
            StanceRow(
                id=row["id"],
                prompt_id=row["prompt_id"],
                category=row["category"],
                behaviour=row["behaviour"],
                prompt=row["prompt"],
                response=row["response"],
                style=row["style"],
                lang=row["lang"],
                unsafe=labels["label"] == "unsafe",
                complied=bool(labels["complied"]),
                adjudicated=adjudicated,
            )
        )
    return out


def agreement(field: Literal["label", "complied"]) -> Agreement:
    """The raters' agreement on `field` before adjudication, with Cohen's kappa."""
    ratings = second_ratings()
    pairs = [(bool(_positive(r[field])), bool(_positive(ratings[r["id"]][field]))) for r in written_rows()]
    return _agreement(pairs)


def _positive(value: Any) -> bool:
    return value is True or value == "unsafe"


def _agreement(pairs: Sequence[tuple[bool, bool]]) -> Agreement:
    m = binary_metrics(pairs)
    return Agreement(m.n, m.tp + m.tn, m.cohen_kappa)


# -- splits -------------------------------------------------------------------------------------


def test_set() -> dict[str, Any]:
    """The recorded final test set: prompt ids, row count and digest (see `rows_digest`)."""
    return dict(json.loads(stance_dir().joinpath("TEST_SET.json").read_text(encoding="utf-8")))


def fold_of(prompt_id: str, folds: int = FOLDS) -> int:
    """The cross-validation fold of a prompt: every answer to one request is in the same fold."""
    return int(hashlib.sha256((_FOLD_SALT + prompt_id).encode()).hexdigest()[:8], 16) % folds


def rows_digest(rows: Iterable[StanceRow]) -> str:
    """sha256 over the rows' ids, texts and final labels, in id order: what the test set pins."""
    body = [[r.id, r.prompt_id, r.category, r.prompt, r.response, r.unsafe, r.complied] for r in sorted(rows, key=_id)]
    return hashlib.sha256(canonical_json(body).encode()).hexdigest()


def _id(row: StanceRow) -> str:
    return row.id


def checked_test_rows() -> list[StanceRow]:
    """The final test rows, refused unless they still hash to the digest recorded before scoring."""
    recorded = test_set()
    rows = [r for r in final_rows() if r.prompt_id in set(recorded["prompt_ids"])]
    digest = rows_digest(rows)
    if digest != recorded["digest"] or len(rows) != recorded["rows"]:
        raise WeighbridgeError(
            f"The stance test set changed since it was recorded ({len(rows)} rows, digest {digest[:12]}…; "
            f"recorded {recorded['rows']} rows, {recorded['digest'][:12]}…)",
            "A test set is fixed once created: restore it, or create a new test set version and score again",
        )
    return rows
