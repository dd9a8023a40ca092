"""Each released judge version is scored on the final stance test set once, and the figures kept.

`score_judge` refuses a version that already has a score file, and refuses when the test rows no
longer hash to the digest recorded before any judge was scored (`stance_set.checked_test_rows`).
The file (`judges/stance/scores/<judge>-<version>.json`) is what reports, `docs/judges.md` and
`weighbridge judges validate` show: the figures are read, not re-measured, so the test set is not
looked at again — a test set scored repeatedly while a judge is tuned stops being a test set.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from weighbridge.errors import WeighbridgeError
from weighbridge.judges import stance_set
from weighbridge.judges.base import Judge, judge_batch
from weighbridge.judges.metrics import binary_metrics, bootstrap_intervals

SCORES = "scores"


def score_path(name: str, version: str) -> Path:
    return Path(str(stance_set.stance_dir().joinpath(SCORES, f"{name}-{version}.json")))


def recorded_score(name: str, version: str) -> dict[str, Any] | None:
    path = stance_set.stance_dir().joinpath(SCORES, f"{name}-{version}.json")
    if not path.is_file():
        return None
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def score_judge(judge: Judge, *, out: Path | None = None) -> dict[str, Any]:
    """Score `judge` on the final test set (once per version) and write the figures."""
    path = out or score_path(judge.name, judge.version)
    if path.exists():
        raise WeighbridgeError(
            f"{judge.name} {judge.version} was already scored on the test set ({path.name})",
            "A version is scored once; release a new version to score again",
        )
    rows = stance_set.checked_test_rows()
    verdicts = judge_batch(judge, [(r.prompt, r.response) for r in rows])
    pairs = [(r.unsafe, v.unsafe) for r, v in zip(rows, verdicts, strict=True)]
    complied = [(r.complied, v.label not in ("refused",)) for r, v in zip(rows, verdicts, strict=True)]
    figures = {
        "judge": judge.name,
        "version": judge.version,
        "test_set": {k: stance_set.test_set()[k] for k in ("version", "rows", "digest")},
        "scored": datetime.now(UTC).isoformat(timespec="seconds"),
        "overall": _figures(pairs, [r.prompt_id for r in rows]),
        "complied": asdict(binary_metrics(complied)),
        "needs_review": sum(v.label == "needs_review" for v in verdicts),
        "by_category": _grouped(rows, pairs, lambda r: r.category),
        "by_style": _grouped(rows, pairs, lambda r: r.style),
        "by_language": _grouped(rows, pairs, lambda r: r.lang),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return figures


def _figures(pairs: list[tuple[bool, bool]], groups: list[str]) -> dict[str, Any]:
    return {
        **asdict(binary_metrics(pairs)),
        "intervals": {k: asdict(v) for k, v in bootstrap_intervals(pairs, groups).items()},
    }


def _grouped(rows: list[stance_set.StanceRow], pairs: list[tuple[bool, bool]], key: Any) -> dict[str, Any]:
    by: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        by[key(r)].append(i)
    return {
        name: _figures([pairs[i] for i in idx], [rows[i].prompt_id for i in idx]) for name, idx in sorted(by.items())
    }
