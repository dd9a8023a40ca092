"""Build ``judges/validation/harm.jsonl``: pyrit's human-scored rows (as pointers) plus our own labels.

Run: ``.venv/bin/python scripts/label_build_harm_set.py [--own LABELLED.jsonl ...]``.

* pyrit rows: every data row of ``pyrit/datasets/scorer_evals/objective/*.csv`` in the cached
  pyrit 1.1.0 wheel. ``human_score`` 1 ("objective achieved": the model did what the harmful request
  asked) becomes ``unsafe``, 0 ``safe``. Only a pointer to the text is written (see
  `weighbridge.judges.sources`): some compliant answers are actionable and are not redistributed.
* own rows: answers of SmolLM2-135M-Instruct and Gemma-3-270m (base) collected by
  ``scripts/label_collect_responses.py`` and labelled by hand. ``--own`` takes JSONL files of those
  answers with ``label`` (and optional ``note`` and per-rater ``raters`` labels) added. The own rows
  already in ``harm.jsonl`` are always kept; a given row with the same id replaces its old version,
  so rebuilding never loses a hand label.

Splits come from `split_for(id)`, never chosen by hand.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

from weighbridge.judges.metrics import split_for
from weighbridge.judges.sources import read_csv_rows, text_digest, wheel_member

WHEEL = "pyrit-1.1.0-py3-none-any.whl"
PREFIX = "pyrit/datasets/scorer_evals/objective/"
OUT = Path(__file__).resolve().parents[1] / "src/weighbridge/judges/validation/harm.jsonl"

#: pyrit's file (harm area) -> our hazard category; "misinformation" has no hazard category of its own.
CATEGORY = {
    "bias": "hate",
    "chemical_biological": "indiscriminate_weapons",
    "cyber": "nonviolent_crimes",
    "exploits": "nonviolent_crimes",
    "harassment_bullying": "nonviolent_crimes",
    "hate_speech": "hate",
    "illegal_activity": "nonviolent_crimes",
    "info_integrity": "misinformation",
    "misinformation": "misinformation",
    "phishing": "nonviolent_crimes",
    "privacy": "privacy",
    "self_harm": "self_harm",
    "sexual": "sexual_content",
    "violence": "violent_crimes",
}
OWN_SOURCE = "weighbridge (labelled by hand)"


def pyrit_rows() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    seen: dict[str, str] = {}
    for area in sorted(CATEGORY):
        member = f"{PREFIX}{area}.csv"
        text = wheel_member(WHEEL, member)
        version = text.splitlines()[0].split("dataset_version=")[1].split(",")[0].strip()
        for n, r in enumerate(read_csv_rows(text), start=1):
            prompt, response = r["objective"], r["assistant_response"]
            label = {"1": "unsafe", "0": "safe"}[r["human_score"].strip()]
            digest = text_digest(prompt, response)
            rid = "pyrit-objective-" + digest[:12]
            if rid in seen:  # the same pair twice: keep the first (labels agree, checked here)
                assert seen[rid] == label, f"conflicting labels for {rid}"
                continue
            seen[rid] = label
            rows.append(
                {
                    "id": rid,
                    "label": label,
                    "category": CATEGORY[area],
                    "source": f"pyrit 1.1.0: {member} (dataset_version={version}), data row {n}",
                    "licence": "MIT",
                    "split": split_for(rid),
                    "pointer": {"wheel": WHEEL, "member": member, "row": n, "sha256": digest},
                }
            )
    return rows


def shipped_own_rows() -> list[dict[str, Any]]:
    if not OUT.is_file():
        return []
    return [r for line in OUT.read_text().splitlines() if (r := json.loads(line))["source"].startswith("weighbridge")]


def own_rows(path: Path) -> list[dict[str, Any]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        raw = json.loads(line)
        if raw.get("label") not in ("unsafe", "safe"):
            raise SystemExit(f"unlabelled row {raw['model']} {raw['item_id']}")
        digest = hashlib.sha256(f"{raw['model']}\0{raw['prompt']}\0{raw['response']}".encode()).hexdigest()
        rid = "wb-own-" + digest[:12]
        rows.append(
            {
                "id": rid,
                "prompt": raw["prompt"],
                "response": raw["response"],
                "label": raw["label"],
                "category": raw["category"],
                "source": f"{OWN_SOURCE}: {raw['model']} answering hazards item {raw['item_id']} "
                f"(greedy, {raw.get('max_tokens', 96)} tokens, scripts/label_collect_responses.py)",
                "licence": "Apache-2.0",
                "split": split_for(rid),
                **({"note": raw["note"]} if raw.get("note") else {}),
                **({"raters": raw["raters"]} if raw.get("raters") else {}),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--own", type=Path, nargs="*", default=[], help="hand-labelled answers (JSONL, a label per row)"
    )
    args = parser.parse_args()
    own = {r["id"]: r for r in shipped_own_rows()}
    for path in args.own:
        own |= {r["id"]: r for r in own_rows(path)}
    rows = pyrit_rows() + list(own.values())
    OUT.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    print(f"wrote {len(rows)} rows to {OUT}")


if __name__ == "__main__":
    main()
