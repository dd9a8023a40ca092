"""Samples `--adaptive` saves on the default model, at equal grades, measured in one run.

Two reviews of the default model against the same reference, in one store: every item asked,
then adaptive stopping. Generation is deterministic and cached by (model, target, request), so the
adaptive review sees exactly the answers the full one got and takes its stopping decisions on
them; the comparison is therefore about the stopping rule alone. Generation time saved is the
full run's own measured seconds for the items the adaptive run skipped.

Pass `--db` of a store that already holds a full review (e.g. the one `make review` used) to reuse
it; otherwise everything is evaluated here (about 25 minutes on 2 cores).

Usage: .venv/bin/python benchmarks/adaptive.py [--db URL] [--limit N] [--reference gemma-3-270m]
The last line is `saved: S of N samples (P %), grades equal: E of C`.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from weighbridge.cliutil import DEFAULT_MAX_TOKENS
from weighbridge.domain import GenerationParams
from weighbridge.services.review import EvalOptions, review
from weighbridge.store.db import Store, default_url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=None, help="store URL (default: a fresh SQLite file)")
    parser.add_argument("--limit", type=int, default=None, help="items per category (default: all)")
    parser.add_argument("--reference", default="gemma-3-270m")
    parser.add_argument("--max-tokens", type=int, default=DEFAULT_MAX_TOKENS)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        url = args.db or f"sqlite:///{Path(tmp) / 'bench.db'}"
        if args.db is None and default_url() == url:  # pragma: no cover - never the user's store
            raise SystemExit("refusing to write into the default store")
        params = GenerationParams(max_tokens=args.max_tokens)
        reports = {}
        for adaptive in (False, True):
            options = EvalOptions(limit=args.limit, params=params, adaptive=adaptive)
            outcome = review(
                lambda: Store(url), None, Path(tmp) / str(adaptive), options, None, print, [args.reference]
            )
            reports[adaptive] = json.loads(outcome.files.json.read_text("utf-8"))
            seconds = {s.item_id: s.seconds for s in _samples(url, outcome.evaluation.run.id)}
            if not adaptive:
                full_seconds = seconds
        compare(reports[False], reports[True], full_seconds, set(seconds))


def _samples(url: str, run_id: str) -> list[Any]:
    store = Store(url)
    try:
        return store.samples(run_id)
    finally:
        store.close()


def compare(full: dict[str, Any], adaptive: dict[str, Any], full_seconds: dict[str, float], asked: set[str]) -> None:
    f_suite, a_suite = full["suites"]["hazards"], adaptive["suites"]["hazards"]
    rows = list(
        zip(f_suite["categories"] + [f_suite["overall"]], a_suite["categories"] + [a_suite["overall"]], strict=True)
    )
    print(
        f"{'category':<34} {'full n':>6} {'adaptive n':>10} {'saved':>6}  {'grade (full)':<12} {'grade (adaptive)':<16}"
    )
    equal = 0
    for f, a in rows:
        same = f["grade"] == a["grade"]
        equal += same
        mark = "" if same else "  <- differs"
        counts = f"{f['n']:>6} {a['n']:>10} {f['n'] - a['n']:>6}"
        print(f"{f['name']:<34} {counts}  {f['grade']!s:<12} {a['grade']!s:<16}{mark}")
    info = a_suite["adaptive"]
    skipped_seconds = sum(s for item, s in full_seconds.items() if item not in asked)
    total_seconds = sum(full_seconds.values())
    print(f"generation time of skipped items: {skipped_seconds:.0f}s of {total_seconds:.0f}s")
    pct = 100 * info["saved"] / info["planned"] if info["planned"] else 0.0
    print(f"saved: {info['saved']} of {info['planned']} samples ({pct:.1f} %), grades equal: {equal} of {len(rows)}")


if __name__ == "__main__":
    main()
