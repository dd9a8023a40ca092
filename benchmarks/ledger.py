"""Audit ledger: append rate through the service API, and verify time for a 1,000,000-entry bundle.

1. `ledger.append`, one transaction per entry exactly as the workflow appends (lock, read the
   head, hash, sign, insert, commit; a checkpoint every 1000 entries), for `--append-count` entries.
2. `ledger.append_many`, the same entries in batches of `--batch` per transaction.
3. A `--size`-entry ledger (default 1,000,000) built with `append_many` in batches of 10,000 (same
   library code, same rows, a checkpoint every 1000), exported with `export_bundle`, then verified
   offline with `verify_bundle` in full (hashes, links, order, Merkle roots, every Ed25519
   signature). With one process the verifier times its signature checks, which splits the total
   into chain-only and signatures in one pass (`--chain-only` also times a separate pass without
   signatures; `--jobs N` checks signatures in N worker processes).

The store is a temporary SQLite file unless `--db URL` names another (the ledger tables must be
empty). Entries carry a small realistic evidence mapping (ids, a digest, a purpose), so a bundle line
is about 750 bytes.

Usage: .venv/bin/python benchmarks/ledger.py [--size 1000000] [--append-count 20000] [--batch 1000]
       [--jobs 1] [--chain-only] [--db URL]
"""

from __future__ import annotations

import argparse
import hashlib
import resource
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from weighbridge.ledger.signing import KeySigner
from weighbridge.services import ledger
from weighbridge.store.db import Store

BUILD_BATCH = 10_000


def evidence(i: int) -> dict[str, Any]:
    return {
        "submission": str(uuid.UUID(int=i)),
        "sha256": hashlib.sha256(i.to_bytes(8, "big")).hexdigest(),
        "purpose": "evaluation run",
        "n": i,
    }


def actions(start: int, count: int) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for i in range(start, start + count):
        yield "custody.materialize", f"sub-{i % 997}", evidence(i)


class Clock:
    """Wall and CPU time of a phase (CPU includes finished worker processes): on a shared machine
    the CPU figure is what the phase costs on a core of its own."""

    def __enter__(self) -> Clock:
        self.wall0, self.cpu0 = time.perf_counter(), cpu_seconds()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall0
        self.cpu = cpu_seconds() - self.cpu0

    def __str__(self) -> str:
        return f"{self.wall:.1f} s wall, {self.cpu:.1f} s CPU"


def cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def rate(n: int, clock: Clock) -> str:
    return f"{n:,} entries, {clock}: {n / clock.wall:,.0f} entries/s wall, {n / clock.cpu:,.0f} per CPU-second"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000, help="entries in the verified bundle")
    parser.add_argument("--append-count", type=int, default=20_000, help="entries appended one per transaction")
    parser.add_argument("--batch", type=int, default=1000, help="entries per transaction for the batched rate")
    parser.add_argument("--db", help="database URL (default: a temporary SQLite file)")
    parser.add_argument("--jobs", type=int, default=1, help="processes checking signatures in the verify")
    parser.add_argument("--chain-only", action="store_true", help="also time a separate verify without signatures")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="weighbridge-ledger-bench-"))
    org, actors = KeySigner.generate(), [(KeySigner.generate(), f"evaluator{i}") for i in range(4)]
    try:
        # 1 + 2: append rates, in their own store.
        store = Store(args.db or f"sqlite:///{workdir / 'append.db'}")
        try:
            with Clock() as single:
                for i, (action, subject, ev) in enumerate(actions(0, args.append_count)):
                    signer, actor = actors[i % len(actors)]
                    ledger.append(store, signer, actor, action, subject, ev, checkpoint_signer=org)
            with Clock() as batched:
                done = 0
                while done < args.append_count:
                    n = min(args.batch, args.append_count - done)
                    signer, actor = actors[(done // args.batch) % len(actors)]
                    more = actions(args.append_count + done, n)
                    ledger.append_many(store, signer, actor, more, checkpoint_signer=org)
                    done += n
        finally:
            store.close()
        print(f"append, one transaction per entry (service API): {rate(args.append_count, single)}", flush=True)
        print(f"append_many, {args.batch} entries per transaction: {rate(args.append_count, batched)}", flush=True)

        # 3: the big ledger, exported and verified offline.
        if args.db is not None:
            print("note: --db given: the big ledger continues the same store's chain")
        store = Store(args.db or f"sqlite:///{workdir / 'big.db'}")
        bundle = workdir / "bundle.jsonl"
        try:
            with Clock() as build:
                done = 0
                while done < args.size:
                    n = min(BUILD_BATCH, args.size - done)
                    signer, actor = actors[(done // BUILD_BATCH) % len(actors)]
                    ledger.append_many(store, signer, actor, actions(done, n), checkpoint_signer=org)
                    done += n
            print(f"build ledger (append_many, {BUILD_BATCH:,}/transaction): {rate(args.size, build)}", flush=True)
            with Clock() as export:
                ledger.export_bundle(store, bundle)
        finally:
            store.close()
        print(f"export_bundle: {export}, {bundle.stat().st_size / 1e6:,.0f} MB", flush=True)

        with Clock() as verify:
            full = ledger.verify_bundle(bundle, trusted_keys=[org.key_id], jobs=args.jobs)
        assert full.ok, full.message
        print(f"verify_bundle, full ({full.entries:,} entries, {full.checkpoints:,} checkpoints, jobs={args.jobs}): "
              f"{verify}: {full.entries / verify.wall:,.0f} entries/s wall")  # fmt: skip
        sig = full.signature_seconds
        if args.jobs == 1:
            print(f"  chain only (parse, canonical form, hashes, links, order, Merkle roots, checkpoints): "
                  f"{verify.wall - sig:.1f} s wall")  # fmt: skip
        print(
            f"  Ed25519 entry signatures: {sig:.1f} s (summed over processes; {sig / full.entries * 1e6:.0f} us each)"
        )
        if args.chain_only:
            with Clock() as chain_clock:
                chain = ledger.verify_bundle(bundle, trusted_keys=[org.key_id], check_signatures=False)
            assert chain.ok, chain.message
            print(f"verify_bundle, chain only (a separate pass): {chain_clock}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
