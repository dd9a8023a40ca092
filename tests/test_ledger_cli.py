"""`weighbridge ledger ...` end to end as a user runs it (the real app, a real store)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli_runner import wb
from weighbridge.ledger.signing import KeySigner
from weighbridge.services import ledger
from weighbridge.services.orgkey import PUBLIC_FILE, organisation_signer
from weighbridge.store.db import Store

ALICE = KeySigner.generate()


def record(home: Path, n: int) -> None:
    store = Store(f"sqlite:///{home / 'weighbridge.db'}")
    try:
        for i in range(n):
            ledger.append(store, ALICE, "alice", "submit", f"sub-{i}", {"i": i}, checkpoint_every=3)
    finally:
        store.close()


def test_show_export_verify_prove_and_exit_codes(isolated_home: Path, tmp_path: Path) -> None:
    proc = wb("ledger", "show")
    assert proc.returncode == 0 and "empty" in proc.stdout
    record(isolated_home, 5)  # checkpoint at 3 by the organisation key, created on first use
    org_key_id = organisation_signer(isolated_home).key_id

    proc = wb("ledger", "show", "--last", "2")
    assert proc.returncode == 0, proc.stderr
    assert "sub-4" in proc.stdout and "sub-3" in proc.stdout and "sub-2" not in proc.stdout

    proc = wb("ledger", "verify")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "VALID" in proc.stdout and org_key_id in proc.stdout

    bundle = tmp_path / "audit.jsonl"
    proc = wb("ledger", "export", str(bundle), "--checkpoint")
    assert proc.returncode == 0, proc.stderr
    assert "5 entries, 2 checkpoints, 2 keys" in proc.stdout
    proc = wb("ledger", "verify", str(bundle), "--org-key", str(isolated_home / PUBLIC_FILE))
    assert proc.returncode == 0, proc.stdout + proc.stderr

    lines = bundle.read_bytes().splitlines(keepends=True)
    entry_4 = next(i for i, raw in enumerate(lines) if b'"seq":4,' in raw)
    lines[entry_4] = lines[entry_4].replace(b"sub-3", b"sub-X")
    tampered = tmp_path / "tampered.jsonl"
    tampered.write_bytes(b"".join(lines))
    proc = wb("ledger", "verify", str(tampered))
    assert proc.returncode == 1
    assert "INVALID" in proc.stdout and "first bad entry: 4" in proc.stdout and "hash mismatch" in proc.stdout

    root_3 = json.loads(bundle.read_bytes().splitlines()[6])["checkpoint"]["root"]
    proc = wb("ledger", "verify", str(bundle), "--pin", f"3:{root_3}")
    assert proc.returncode == 0, proc.stdout
    proc = wb("ledger", "verify", str(bundle), "--pin", f"3:{'0' * 64}")
    assert proc.returncode == 1 and "not the pinned root" in proc.stdout
    proc = wb("ledger", "verify", str(bundle), "--pin", "3:xyz")
    assert proc.returncode == 1 and "is not SIZE:ROOT" in proc.stderr

    proc = wb("ledger", "verify", str(bundle), "--org-key", ALICE.key_id)
    assert proc.returncode == 1 and "not a trusted key" in proc.stdout

    proof = tmp_path / "proof.json"
    proc = wb("ledger", "prove", "2", "--out", str(proof))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proof.read_text())["tree_size"] == 3
    proc = wb("ledger", "verify-proof", str(proof), "--org-key", org_key_id)
    assert proc.returncode == 0 and "included in the checkpoint at tree size 3" in proc.stdout
    proc = wb("ledger", "verify", str(proof))  # verify recognises a proof too
    assert proc.returncode == 0 and "included in the checkpoint at tree size 3" in proc.stdout
    altered = json.loads(proof.read_text())
    altered["entry"]["action"] = "approve"
    proof.write_text(json.dumps(altered))
    proc = wb("ledger", "verify-proof", str(proof))
    assert proc.returncode == 1 and "INVALID" in proc.stdout

    proc = wb("ledger", "prove", "99")
    assert proc.returncode == 1 and "no entry 99" in proc.stderr and "Traceback" not in proc.stderr
    proc = wb("ledger", "verify", str(tmp_path / "missing.jsonl"))
    assert proc.returncode == 1 and "Cannot read" in proc.stderr


def test_checkpoint_command_and_org_key(isolated_home: Path) -> None:
    proc = wb("ledger", "checkpoint")
    assert proc.returncode == 1 and "empty" in proc.stderr
    record(isolated_home, 2)
    proc = wb("ledger", "checkpoint")
    assert proc.returncode == 0, proc.stderr
    assert "Checkpoint at tree size 2" in proc.stdout
    proc = wb("ledger", "org-key")
    assert proc.returncode == 0 and organisation_signer(isolated_home).key_id in proc.stdout
