"""Milliseconds per judgement of the shipped harm judge, measured side by side in one run.

The same 400 (request, answer) pairs from the stance set's *training* split (the final test set is
scored once per judge version and is not read here) are judged three ways on the same loaded
network: in arrival order in batches of the review's size (how `runner.engine` hands them over),
sorted by length across the whole set (how `judges validate` and a large batch are judged), each at
1 and 2 threads. The judge's answers are the same either way; only the padding work differs.

Usage: .venv/bin/python benchmarks/judge_speed.py [--pairs 400] [--review-batch 8]
The last line is `harm judge: X ms/judgement (2 threads, sorted), ratio in-order/sorted R`.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=400)
    parser.add_argument("--review-batch", type=int, default=8, help="pairs per call in arrival order")
    args = parser.parse_args()

    import torch

    from weighbridge.judges import stance_set
    from weighbridge.judges.harm import load_harm_model

    test = set(stance_set.test_set()["prompt_ids"])
    train = [r for r in stance_set.final_rows() if r.prompt_id not in test]
    picked = np.random.default_rng(0).choice(len(train), size=min(args.pairs, len(train)), replace=False)
    prompts = [train[i].prompt for i in picked]
    responses = [train[i].response for i in picked]
    classifier = load_harm_model().classifier()
    classifier.probabilities(prompts[:8], responses[:8])  # warm-up: first-call allocations

    def per_judgement(threads: int, chunk: int) -> tuple[float, np.ndarray]:
        torch.set_num_threads(threads)
        start = time.perf_counter()
        parts = [
            classifier.probabilities(prompts[i : i + chunk], responses[i : i + chunk])
            for i in range(0, len(prompts), chunk)
        ]
        return 1000 * (time.perf_counter() - start) / len(prompts), np.concatenate(parts)

    results: dict[tuple[int, str], float] = {}
    reference: np.ndarray | None = None
    for threads in (1, 2):
        for name, chunk in (("in-order", args.review_batch), ("sorted", len(prompts))):
            ms, out = per_judgement(threads, chunk)
            results[threads, name] = ms
            if reference is None:
                reference = out
            # Same verdicts whatever the batching (up to float noise from padding).
            assert np.abs(out - reference).max() < 1e-3, "batching changed the judge's output"
            print(f"{threads} thread(s), {name:8s}: {ms:6.1f} ms/judgement")
    ratio = results[2, "in-order"] / results[2, "sorted"]
    print(f"harm judge: {results[2, 'sorted']:.1f} ms/judgement (2 threads, sorted), ratio in-order/sorted {ratio:.2f}")


if __name__ == "__main__":
    main()
