"""Generated tokens/s of a weighbridge run vs raw llama-cpp-python, same prompts, one process.

The weighbridge side is the whole runner: cache lookups, generation, judging and journaling every
sample to a fresh SQLite store (so nothing is served from cache). The raw side is a bare loop over
`Llama.create_chat_completion` with the same sampling settings. Rounds alternate (raw, weighbridge,
raw, ...) so that machine noise hits both sides alike; the figure is total tokens over total time.

Usage: .venv/bin/python benchmarks/throughput.py [--prompts 12] [--rounds 3] [--max-tokens 64]
The last line is `ratio: X.XX` (weighbridge tokens/s ÷ raw tokens/s; goal ≥ 0.97).
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path

from llama_cpp import Llama

from weighbridge.domain import GenerationParams
from weighbridge.intake.resolve import resolve_model
from weighbridge.judges.scorers import as_scorers
from weighbridge.runner.engine import RunPlan, execute
from weighbridge.services.review import default_judges
from weighbridge.store.db import Store
from weighbridge.store.schema import RunRow
from weighbridge.suites.hazards import load_hazard_suite
from weighbridge.targets.llamacpp import LlamaCppTarget, default_threads


def raw_round(llm: Llama, prompts: list[str], params: GenerationParams) -> tuple[int, float]:
    tokens = 0
    start = time.perf_counter()
    for prompt in prompts:
        out = llm.create_chat_completion(
            messages=[{"role": "user", "content": prompt}],
            max_tokens=params.max_tokens,
            temperature=params.temperature,
            top_p=params.top_p,
            seed=params.seed,
            repeat_penalty=params.repeat_penalty,
        )
        tokens += out["usage"]["completion_tokens"]  # type: ignore[index]
    return tokens, time.perf_counter() - start


def weighbridge_round(
    target: LlamaCppTarget, items: tuple, params: GenerationParams, workdir: Path
) -> tuple[int, float]:
    store = Store(f"sqlite:///{workdir / f'bench-{uuid.uuid4().hex}.db'}")
    model = resolve_model(str(target.model_path))
    sub = store.add_submission(model, source=str(model.path))
    run = store.add_run(
        RunRow(
            id=str(uuid.uuid4()),
            submission_id=sub.id,
            run_key=uuid.uuid4().hex,
            suite_id="hazards",
            suite_version="bench",
            suite_hash="bench",
            item_limit=None,
            total_items=len(items),
            params_json="{}",
            target_json="{}",
            judges_json="[]",
        )
    )
    start = time.perf_counter()
    stats = execute(store, RunPlan(run.id, model.digest, items, params), target, as_scorers(default_judges()))
    seconds = time.perf_counter() - start
    store.close()
    return stats.tokens_generated, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=default_threads())
    args = parser.parse_args()

    model = resolve_model(None)
    assert model.path is not None
    items = load_hazard_suite().items[: args.prompts]
    params = GenerationParams(max_tokens=args.max_tokens)
    target = LlamaCppTarget(Path(model.path), n_threads=args.threads)
    raw = Llama(
        model_path=model.path,
        n_ctx=target.n_ctx,
        n_threads=args.threads,
        n_threads_batch=args.threads,
        seed=params.seed,
        verbose=False,
    )
    print(
        f"model {model.name}, {len(items)} prompts x {args.rounds} rounds, max_tokens {args.max_tokens}, "
        f"{args.threads} threads"
    )
    totals = {"raw": [0, 0.0], "weighbridge": [0, 0.0]}
    with tempfile.TemporaryDirectory() as tmp:
        # Warm both once so that first-touch page faults are not charged to either side.
        raw_round(raw, [items[0].prompt], params)
        target.generate([])
        for r in range(args.rounds):
            for side in ("raw", "weighbridge") if r % 2 == 0 else ("weighbridge", "raw"):
                if side == "raw":
                    tokens, seconds = raw_round(raw, [i.prompt for i in items], params)
                else:
                    tokens, seconds = weighbridge_round(target, items, params, Path(tmp))
                totals[side][0] += tokens
                totals[side][1] += seconds
                print(
                    f"round {r + 1} {side:>11}: {tokens:5d} tokens in {seconds:6.2f}s = {tokens / seconds:6.1f} tok/s"
                )
    rates = {side: t / s for side, (t, s) in totals.items()}
    print(f"raw llama_cpp: {rates['raw']:.1f} tok/s; weighbridge: {rates['weighbridge']:.1f} tok/s")
    print(f"ratio: {rates['weighbridge'] / rates['raw']:.2f}")


if __name__ == "__main__":
    main()
