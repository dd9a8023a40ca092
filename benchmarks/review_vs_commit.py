"""Wall-clock of `weighbridge review` at two commits, side by side on one machine.

"The main job is not slower than today" can only be checked on one machine at one time: a review's
time moves by 50 % between hosts and days. So this script checks both commits out into temporary
git worktrees (the working tree may be mid-edit), and runs the same command from both in alternating rounds (base,
head, base, head, ...) with the same virtualenv, each in a fresh `WEIGHBRIDGE_HOME` (a fresh store:
the reference model is evaluated too, nothing comes from the response cache). Only the Python
sources differ between the two sides (`PYTHONPATH` puts the worktree's `src` first), so the ratio is
the cost of the code change, judges included.

It also compares what the two reviews found: each side's journal digest (every answer and every
judge's label), its counts and its grades per category. When both commits judge with the same judge
versions, identical results show that a refactoring changed nothing a reviewer sees.

Usage: .venv/bin/python benchmarks/review_vs_commit.py --base 42f44d6 [--head HEAD] [--limit 5] [--rounds 2]
The last lines are `results: identical` (or what differs) and
`review time: head/base R (head Xs, base Ys)`; R ≤ 1.2 keeps "within 20 %".
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def timed_review(src: Path, limit: int, work: Path) -> tuple[float, dict[str, Any]]:
    home = Path(tempfile.mkdtemp(prefix="home-", dir=work))
    env = os.environ | {"WEIGHBRIDGE_HOME": str(home), "PYTHONPATH": str(src)}
    command = [sys.executable, "-m", "weighbridge.cli", "review", "--limit", str(limit), "--out", str(home / "out")]
    start = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=work, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"review from {src} failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    report = json.loads((home / "out" / "report.json").read_text("utf-8"))
    shutil.rmtree(home, ignore_errors=True)
    return seconds, report


def findings(report: dict[str, Any]) -> dict[str, Any]:
    """What a reviewer reads off a report: the journal digest, and per category the counts and grades."""
    suites = report["suites"]
    return {
        "journal": report.get("run", {}).get("journal_digest", "(not recorded)"),  # older reports lack it
        "categories": {
            f"{suite}/{c['id']}": [c["unsafe"], c["n"], c.get("grade"), [r["unsafe"] for r in c.get("comparisons", [])]]
            for suite, block in suites.items()
            for c in [*block["categories"], {**block["overall"], "id": "overall"}]
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the earlier commit to compare against")
    parser.add_argument("--head", default="HEAD", help="the commit to measure (default: HEAD)")
    parser.add_argument("--limit", type=int, default=5, help="items per category (both sides)")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="review-vs-commit-"))
    trees = {"base": work / "base", "head": work / "head"}
    try:
        for side, commit in (("base", args.base), ("head", args.head)):
            subprocess.run(
                ["git", "-C", str(REPO), "worktree", "add", "--detach", str(trees[side]), commit], check=True
            )
        totals = {"base": 0.0, "head": 0.0}
        found: dict[str, dict[str, Any]] = {}
        for round_no in range(1, args.rounds + 1):
            for side, tree in trees.items():
                seconds, report = timed_review(tree / "src", args.limit, work)
                totals[side] += seconds
                found.setdefault(side, findings(report))
                print(f"round {round_no} {side}: {seconds:.1f} s", flush=True)
    finally:
        for tree in trees.values():
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], check=False)
        shutil.rmtree(work, ignore_errors=True)
    differing = [
        key
        for key in sorted(set(found["base"]["categories"]) | set(found["head"]["categories"]))
        if found["base"]["categories"].get(key) != found["head"]["categories"].get(key)
    ]
    same_journal = found["base"]["journal"] == found["head"]["journal"]
    print(f"journal digest: base {found['base']['journal'][:16]}, head {found['head']['journal'][:16]}")
    for key in differing:
        print(f"  {key}: base {found['base']['categories'].get(key)}, head {found['head']['categories'].get(key)}")
    print("results: identical" if same_journal and not differing else f"results: {len(differing)} lines differ")
    head, base = totals["head"] / args.rounds, totals["base"] / args.rounds
    print(f"review time: head/base {head / base:.2f} (head {head:.1f}s, base {base:.1f}s)")


if __name__ == "__main__":
    main()
