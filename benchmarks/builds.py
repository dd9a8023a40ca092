"""Tokens/s and answers of the portable and the native llama.cpp build, side by side in one run.

The project's llama.cpp build is the portable one by default (scripts/build-llama.sh: GGML_NATIVE=OFF,
llama.cpp's fixed AVX2 level) so that every AVX2 machine computes the same answers. This prints what
that choice costs on the machine it runs on, and whether the two builds answer alike.

Sides: the build installed in .venv, and the other variant kept in a folder of its own
($WEIGHBRIDGE_LLAMA_BUILDS, default ~/.cache/weighbridge/llama-builds/VARIANT-VERSION, made with
`scripts/build-llama.sh VARIANT DIR`; `--build-missing` makes it, about 6 minutes on 2 cores). Each
side runs in its own Python process (a process can load only one libllama), PYTHONPATH picking the
build; a `baseline` build (SSE4.2 only) found there joins as a third side. Rounds alternate the
order of the sides so machine noise hits all alike; a side's figure is its total generated tokens
over its total decoding time (model load excluded). Answers are greedy, the same hazard prompts,
compared item by item with the first side's.

Usage: .venv/bin/python benchmarks/builds.py [--build-missing] [--prompts 24] [--max-tokens 64]
       [--rounds 3] [--batch-size 1]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
VERSION = "0.3.36"
VARIANTS = ("portable", "native")
# Compared too when present (scripts/build-llama.sh baseline DIR): another instruction-set level that
# any x86-64 machine runs, to see the variation between levels on a machine without AVX-512.
OPTIONAL = ("baseline",)


def builds_dir() -> Path:
    return Path(os.environ.get("WEIGHBRIDGE_LLAMA_BUILDS", Path.home() / ".cache/weighbridge/llama-builds"))


def worker(prompts: int, max_tokens: int, batch_size: int) -> None:
    """One side: load the default model with whatever llama.cpp this process imports, answer."""
    from weighbridge.domain import ChatMessage, ChatRequest, GenerationParams
    from weighbridge.intake.resolve import default_model_path
    from weighbridge.suites.hazards import load_hazard_suite
    from weighbridge.targets.llamacpp import LlamaCppTarget
    from weighbridge.targets.llamacpp_build import current_build

    items = _spread(load_hazard_suite().items, prompts)
    params = GenerationParams(max_tokens=max_tokens)
    requests = [ChatRequest(i.id, (ChatMessage("user", i.prompt),), params) for i in items]
    target = LlamaCppTarget(default_model_path(), batch_size=batch_size)
    try:
        texts: list[str] = []
        tokens = 0
        start = time.perf_counter()
        for k in range(0, len(requests), batch_size):
            for g in target.generate(requests[k : k + batch_size]):
                texts.append(g.text)
                tokens += g.completion_tokens
        seconds = time.perf_counter() - start
    finally:
        target.close()
    print(json.dumps({"build": current_build().record(), "tokens": tokens, "seconds": seconds, "texts": texts}))


def _spread(items: Any, n: int) -> list[Any]:
    """n items taken evenly across the suite (so every category is represented)."""
    step = max(1, len(items) // n)
    return list(items[::step][:n])


def installed_variant() -> str:
    out = subprocess.run(
        [sys.executable, "-c", "from weighbridge.targets.llamacpp_build import current_build as c; print(c().variant)"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def run_side(pythonpath: Path | None, args: argparse.Namespace) -> dict[str, Any]:
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(pythonpath), env.get("PYTHONPATH")) if p)
    cmd = [sys.executable, __file__, "--worker", "--prompts", str(args.prompts), "--max-tokens", str(args.max_tokens)]
    cmd += ["--batch-size", str(args.batch_size)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"side {pythonpath or '.venv'} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--prompts", type=int, default=24)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--build-missing", action="store_true", help="build the other variant if it is missing")
    args = parser.parse_args()
    if args.worker:
        worker(args.prompts, args.max_tokens, args.batch_size)
        return
    mine = installed_variant()
    sides: list[tuple[str, Path | None]] = [(f".venv ({mine})", None)]
    for variant in (*VARIANTS, *OPTIONAL):
        if variant == mine:
            continue
        folder = builds_dir() / f"{variant}-{VERSION}"
        if variant in OPTIONAL and not (folder / "llama_cpp").is_dir():
            continue
        if not (folder / "llama_cpp").is_dir():
            if not args.build_missing:
                sys.exit(
                    f"No {variant} build in {folder}. Make it with `scripts/build-llama.sh {variant} {folder}` "
                    "or rerun with --build-missing (about 6 minutes on 2 cores)"
                )
            subprocess.run(["bash", str(REPO / "scripts/build-llama.sh"), variant, str(folder)], check=True)
        sides.append((variant, folder))
    totals = {name: [0, 0.0] for name, _ in sides}
    answers: dict[str, list[str]] = {}
    records: dict[str, dict[str, Any]] = {}
    for r in range(args.rounds):
        order = sides if r % 2 == 0 else list(reversed(sides))
        for name, folder in order:
            res = run_side(folder, args)
            totals[name][0] += res["tokens"]
            totals[name][1] += res["seconds"]
            answers.setdefault(name, res["texts"])
            if res["texts"] != answers[name]:
                print(f"  note: {name} answered differently between rounds (not reproducible on one build)")
            records[name] = res["build"]
            print(f"  round {r + 1}: {name:>18} {res['tokens'] / res['seconds']:7.1f} tok/s", flush=True)
    first = sides[0][0]
    base = totals[first][0] / totals[first][1]
    print(
        f"\n{args.prompts} hazard prompts x {args.max_tokens} tokens, batch size {args.batch_size}, "
        f"{args.rounds} rounds, greedy, SmolLM2-135M Q4_1"
    )
    print(f"{'build':>18} {'tok/s':>7} {'x ' + first:>12}  same answers  compiled in")
    for name, _ in sides:
        tokens, seconds = totals[name]
        same = sum(a == b for a, b in zip(answers[name], answers[first], strict=True))
        print(
            f"{name:>18} {tokens / seconds:7.1f} {tokens / seconds / base:12.3f}  {same:>5}/{len(answers[first])}"
            f"     {records[name]['features']}"
        )


if __name__ == "__main__":
    main()
