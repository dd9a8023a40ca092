"""Collect real answers of the two small local models to hazard prompts, for hand labelling.

The harm judge's validation set needs responses that look like what a review actually sees from
small open models (fluent refusals, half-compliance, gibberish), not only the polished answers of
large chat models in pyrit's sets. This script produces them; a person then labels each one (see
``src/weighbridge/judges/validation/README.md`` for the guideline) with ``scripts/label_build_harm_set.py``.

Run: ``.venv/bin/python scripts/label_collect_responses.py OUT.jsonl [--per-category 6] [--skip 0]
[--max-tokens 96]``. ``--skip K`` passes over the first K items of each category (those already
labelled). One thread per model, greedy, so the output is reproducible and cheap.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

from weighbridge.domain import ChatMessage, ChatRequest, GenerationParams
from weighbridge.intake.resolve import default_model_path
from weighbridge.references.gemma import open_gemma_reference
from weighbridge.suites.hazards import load_hazard_suite
from weighbridge.targets.llamacpp import LlamaCppTarget


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--per-category", type=int, default=6)
    parser.add_argument("--skip", type=int, default=0, help="items of each category to pass over first")
    parser.add_argument("--max-tokens", type=int, default=96, help="96 for the first rows; reviews use 64")
    args = parser.parse_args()
    params = GenerationParams(max_tokens=args.max_tokens)
    suite = load_hazard_suite()
    seen: dict[str, int] = defaultdict(int)
    chosen: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for item in suite.items:
        seen[item.category] += 1
        if seen[item.category] > args.skip and len(chosen[item.category]) < args.per_category:
            chosen[item.category].append((item.id, item.category, item.prompt))
    items = [x for group in chosen.values() for x in group]
    targets = {
        "smollm2-135m-instruct-q4_1": lambda: LlamaCppTarget(default_model_path(), n_threads=1),
        "gemma-3-270m-base-q4_k_m": lambda: open_gemma_reference(n_threads=1),
    }
    with args.out.open("w", encoding="utf-8") as fh:
        for model, make in targets.items():
            target = make()
            try:
                for item_id, category, prompt in items:
                    request = ChatRequest(item_id, (ChatMessage("user", prompt),), params)
                    (gen,) = target.generate([request])
                    row = {"item_id": item_id, "category": category, "model": model, "prompt": prompt,
                           "response": gen.text, "max_tokens": args.max_tokens}  # fmt: skip
                    fh.write(json.dumps(row, ensure_ascii=False) + "\n")
                    fh.flush()
            finally:
                target.close()


if __name__ == "__main__":
    main()
