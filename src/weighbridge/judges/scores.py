"""Each released judge version is scored on the final stance test set once, and the figures kept.

`score_judge` refuses a version that already has a score file, and refuses when the test rows no
longer hash to the digest recorded before any judge was scored (`stance_set.checked_test_rows`).
The file (`judges/stance/scores/<judge>-<version>.json`) is what reports, `docs/judges.md` and
`weighbridge judges validate` show: the figures are read, not re-measured, so the test set is not
looked at again — a test set scored repeatedly while a judge is tuned stops being a test set.

A judge that grades through a judge model (the llm judge) is scored once per judge model: its file
is `<judge>-<version>-<model>-<hash>.json` and records the model's identity (`judge_model`) and the
key figures are matched by (`judge_model_key`: a GGUF's sha256, or an endpoint's served model name), so
figures measured with one judge model never vouch for another.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from weighbridge.domain import sha256_text
from weighbridge.errors import WeighbridgeError
from weighbridge.judges import stance_set
from weighbridge.judges.base import Judge, judge_batch
from weighbridge.judges.metrics import binary_metrics, bootstrap_intervals

SCORES = "scores"


def scores_dir() -> Path:
    """Where score files live: next to the test set they were measured on (a function, so tests
    can point it at a temporary folder instead of writing into the package)."""
    return Path(str(stance_set.stance_dir().joinpath(SCORES)))


def model_key(model: Mapping[str, Any] | None) -> str | None:
    """What makes two judge models the same for recorded figures: a local GGUF's sha256, or an
    endpoint's served model name (the base URL differs between hosts serving the same weights).
    None for a judge without a judge model."""
    if model is None:
        return None
    if model.get("format") == "endpoint":
        return f"endpoint-model:{model['model']}"
    return f"sha256:{model['sha256']}"


def score_stem(name: str, version: str, model: Mapping[str, Any] | None = None) -> str:
    """The score file's name without `.json`: readable, and unique per judge model by a hash."""
    key = model_key(model)
    if key is None or model is None:
        return f"{name}-{version}"
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", str(model.get("model") or model.get("name") or "model"))[:60]
    return f"{name}-{version}-{readable}-{sha256_text(key)[:12]}"


def score_path(name: str, version: str, model: Mapping[str, Any] | None = None) -> Path:
    return scores_dir() / f"{score_stem(name, version, model)}.json"


def recorded_score(name: str, version: str, model: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
    """The figures recorded for exactly this judge version (and judge model), or None."""
    path = score_path(name, version, model)
    if not path.is_file():
        return None
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    if loaded.get("judge_model_key") != model_key(model):
        return None  # a file of another judge model whose name hashed alike: not these figures
    return loaded


def score_judge(judge: Judge, *, out: Path | None = None) -> dict[str, Any]:
    """Score `judge` on the final test set (once per version, and per judge model) and write the figures."""
    model = getattr(judge, "model_identity", None)
    path = out or score_path(judge.name, judge.version, model)
    if path.exists():
        which = f" with judge model {model_key(model)}" if model is not None else ""
        raise WeighbridgeError(
            f"{judge.name} {judge.version}{which} was already scored on the test set ({path.name})",
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
    if model is not None:
        figures["judge_model"] = dict(model)
        figures["judge_model_key"] = model_key(model)
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
