"""Generated tokens/s of batched decoding vs one request at a time, same prompts, one process.

Sides: `raw` is a bare loop over llama-cpp-python's `Llama.create_chat_completion` (one by one, the
same chat template and sampling settings); `bs1` is `LlamaCppTarget(batch_size=1)`, the single path;
`bsN` is `LlamaCppTarget(batch_size=N)` handed N requests at a time, as the runner hands them over.
Rounds rotate the order of the sides so that machine noise (another process, a frequency change)
hits all of them alike; each figure is total tokens over total time of its side. Answers of every
side are compared with `bs1` and `raw`: with greedy decoding they are identical wherever llama.cpp
computes the same numbers (see `weighbridge.targets.llamacpp_batch`).

Usage: .venv/bin/python benchmarks/batching.py [--model smollm2|gemma] [--prompts 16] [--rounds 2]
       [--max-tokens 64] [--sizes 4,8,16]

Measured on the 2-core development machine (AMD EPYC, 2 threads; 16 hazard prompts, 64 tokens):

    SmolLM2-135M Q4_1, 3 rounds      tok/s  x raw  x bs1  = bs1
      raw (create_chat_completion)    50.6   1.00   0.99  15/16   (reuses the previous prompt's
      bs1                             50.9   1.01   1.00  16/16    KV prefix: its answers depend
      bs4                             56.3   1.11   1.11  16/16    on the order, 1 changed
      bs8                             57.1   1.13   1.12  16/16    between rounds)
      bs16                            60.4   1.19   1.19  16/16
    Gemma-3-270m Q4_K_M, 2 rounds
      raw                             27.5   1.00   1.08  11/16
      bs1                             25.3   0.92   1.00  16/16
      bs4                             29.3   1.07   1.16   7/16
      bs8                             31.3   1.14   1.24   9/16
      bs16                            33.8   1.23   1.34  10/16

Through the whole runner (generation, judges, journal; 32 prompts, 2 rounds) batch size 8 took
1.21x less time than 1 with SmolLM2, with the same 2050 tokens.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from llama_cpp import Llama

from weighbridge.domain import ChatMessage, ChatRequest, Generation, GenerationParams
from weighbridge.intake.resolve import default_model_path
from weighbridge.references import PLAIN_DIALOGUE, gemma_reference_path
from weighbridge.suites.hazards import load_hazard_suite
from weighbridge.targets.llamacpp import LlamaCppTarget, default_threads


def raw_side(llm: Llama, requests: list[ChatRequest], stop: list[str]) -> tuple[list[str], int, float]:
    texts: list[str] = []
    tokens = 0
    start = time.perf_counter()
    for r in requests:
        p = r.params
        out: Any = llm.create_chat_completion(
            messages=[{"role": m.role, "content": m.content} for m in r.messages],
            max_tokens=p.max_tokens,
            temperature=p.temperature,
            top_p=p.top_p,
            seed=p.seed,
            repeat_penalty=p.repeat_penalty,
            stop=stop,
        )
        texts.append(out["choices"][0]["message"]["content"] or "")
        tokens += out["usage"]["completion_tokens"]
    return texts, tokens, time.perf_counter() - start


def target_side(target: LlamaCppTarget, requests: list[ChatRequest]) -> tuple[list[str], int, float]:
    gens: list[Generation] = []
    start = time.perf_counter()
    for i in range(0, len(requests), target.batch_size):
        gens += target.generate(requests[i : i + target.batch_size])
    return [g.text for g in gens], sum(g.completion_tokens for g in gens), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--model", choices=["smollm2", "gemma"], default="smollm2")
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=64, help="the review's default is 64")
    parser.add_argument("--sizes", default="4,8,16", help="batch sizes besides 1")
    parser.add_argument("--threads", type=int, default=default_threads())
    args = parser.parse_args()

    if args.model == "gemma":
        path = gemma_reference_path()
        fmt: dict[str, Any] = {"chat_template": PLAIN_DIALOGUE.template, "stop": PLAIN_DIALOGUE.stop}
    else:
        path, fmt = default_model_path(), {}
    params = GenerationParams(max_tokens=args.max_tokens)
    items = load_hazard_suite().items[: args.prompts]
    requests = [ChatRequest(i.id, (ChatMessage("user", i.prompt),), params) for i in items]

    sizes = [1, *(int(s) for s in args.sizes.split(","))]
    targets = {f"bs{n}": LlamaCppTarget(Path(path), n_threads=args.threads, batch_size=n, **fmt) for n in sizes}
    single = targets["bs1"]
    # The raw side formats exactly as the target does (the GGUF's template, or the explicit format).
    raw = Llama(
        model_path=str(path),
        n_ctx=single.n_ctx,
        n_threads=args.threads,
        n_threads_batch=args.threads,
        seed=params.seed,
        verbose=False,
        chat_handler=single._formatter.to_chat_handler(),
    )
    stop = list(single.stop)
    sides = ["raw", *targets]
    print(
        f"model {path.name}, {len(requests)} hazard prompts x {args.rounds} rounds, max_tokens {args.max_tokens}, "
        f"{args.threads} threads, greedy"
    )
    # Warm every side once so first-touch page faults and buffer allocation are charged to none.
    raw_side(raw, requests[:1], stop)
    for t in targets.values():
        t.generate(requests[: min(2, t.batch_size)])

    totals = {s: [0, 0.0] for s in sides}
    answers: dict[str, list[str]] = {}
    for r in range(args.rounds):
        order = sides[r % len(sides) :] + sides[: r % len(sides)]
        for side in order:
            if side == "raw":
                texts, tokens, seconds = raw_side(raw, requests, stop)
            else:
                texts, tokens, seconds = target_side(targets[side], requests)
            answers.setdefault(side, texts)
            if answers[side] != texts:
                print(f"  warning: {side} answered differently in round {r + 1}")
            totals[side][0] += tokens
            totals[side][1] += seconds
            print(f"round {r + 1} {side:>5}: {tokens:5d} tokens in {seconds:6.2f}s = {tokens / seconds:6.1f} tok/s")

    rate = {s: t / secs for s, (t, secs) in totals.items()}
    n = len(requests)
    print()
    print(f"{'side':>5} | {'tok/s':>6} | {'s/round':>7} | {'x raw':>5} | {'x bs1':>5} | {'= bs1':>5} | {'= raw':>5}")
    for s in sides:
        same_single = sum(a == b for a, b in zip(answers[s], answers["bs1"], strict=True))
        same_raw = sum(a == b for a, b in zip(answers[s], answers["raw"], strict=True))
        print(
            f"{s:>5} | {rate[s]:6.1f} | {totals[s][1] / args.rounds:7.2f} | {rate[s] / rate['raw']:5.2f} | "
            f"{rate[s] / rate['bs1']:5.2f} | {same_single:2d}/{n:<2d} | {same_raw:2d}/{n:<2d}"
        )
    print("(x raw, x bs1: tokens/s ratios; = bs1, = raw: answers identical to that side's)")
    for t in targets.values():
        t.close()
    raw.close()


if __name__ == "__main__":
    main()
