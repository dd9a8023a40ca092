"""The acceptance script: the default model from submission to a published, verifying notice, with a
team of named users acting through their own keys and two approvers deciding."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import WEIGHBRIDGE
from weighbridge.store.db import Store

pytestmark = pytest.mark.slow
PASSPHRASE = "s3cret passphrase"


def test_submission_to_published_notice_with_two_approvers(tmp_path: Path, isolated_home: Path) -> None:
    base = os.environ | {"WEIGHBRIDGE_HOME": str(isolated_home), "WEIGHBRIDGE_ORG": "Test Agency"}
    base = {k: v for k, v in base.items() if k not in ("WEIGHBRIDGE_USER_KEY", "WEIGHBRIDGE_USER", "WEIGHBRIDGE_DB")}

    def wb(*args: str, user: str | None = None, ok: bool = True) -> subprocess.CompletedProcess[str]:
        env = base | ({"WEIGHBRIDGE_USER": user, "WEIGHBRIDGE_USER_PASSPHRASE": PASSPHRASE} if user else {})
        env |= {"WEIGHBRIDGE_NEW_USER_PASSPHRASE": PASSPHRASE}
        proc = subprocess.run([*WEIGHBRIDGE, *args], env=env, capture_output=True, text=True, timeout=900)
        assert (proc.returncode == 0) == ok, (args, user, proc.stdout, proc.stderr)
        return proc

    # The quick path: no set-up; the first command makes the local admin and says so.
    reports = tmp_path / "reports"
    first = wb("review", "--limit", "1", "--max-tokens", "16", "--out", str(reports))
    assert "local admin" in first.stderr
    store = Store(f"sqlite:///{isolated_home / 'weighbridge.db'}")
    submission = next(s for s in store.list_submissions() if s.name.startswith("SmolLM2"))
    store.close()
    # The quick path went through custody: the weights were deposited and decrypted for the run.
    entries = [
        json.loads(line)
        for line in wb("ledger", "show", "--subject", submission.id, "--json").stdout.split("\n")
        if line
    ]
    actions = [e["action"] for e in entries]
    assert "custody.deposit" in actions and "custody.materialize" in actions and "custody.release" in actions

    for name, role in [("sam", "submitter"), ("eve", "evaluator"), ("ann", "approver"), ("bob", "approver")]:
        wb("user", "add", name, "--role", role)  # as the local admin
    review = wb("reviews", "open", submission.id[:8], user="sam").stdout.split()[2]
    for _ in range(4):  # each step finds its evidence: custody, inspection, custody-copy runs + reference
        wb("reviews", "advance", review, user="eve")
    assert "runs=" in wb("reviews", "show", review).stdout
    wb("reviews", "propose", review, "--release", "research_release", "--rationale", "smoke review", user="eve")
    refused = wb("reviews", "approve", review, user="eve", ok=False)
    assert "needs the role approver" in refused.stderr
    wb("reviews", "approve", review, user="ann")
    assert "2 different approvers" in wb("reviews", "decide", review, user="ann", ok=False).stderr
    wb("reviews", "approve", review, user="bob")
    wb("reviews", "decide", review, user="ann")
    notices = tmp_path / "notices"
    published = wb(
        "reviews", "publish", review, "--out", str(notices), "--report", str(reports / "report.json"), user="bob"
    )
    assert "notice_published" in published.stdout
    (notice,) = notices.glob("notice-*.dsse.json")

    # The public's checks: the notice verifies against the weights; the record verifies against the ledger.
    verified = wb("notice", "verify", str(notice), "--model", str(Path(submission.source)), "--json")
    result = json.loads(verified.stdout)
    assert result["valid"] is True and result["model_checked"] is True, result
    assert result["decided_release"] == "research_release"
    # The notice names the runs its grades come from, with the journal digests the ledger pinned.
    runs = {r["reference"]: r for r in result["runs"]}
    assert set(runs) == {None, "gemma-3-270m"}
    report = json.loads((reports / "report.json").read_text())
    assert runs[None]["run_id"] == report["run"]["id"]
    assert runs[None]["journal_digest"] == report["run"]["journal_digest"]
    assert runs[None]["journal_digest"] in wb("notice", "verify", str(notice)).stdout
    wb("reviews", "verify", review)
    wb("ledger", "verify")
    listed = wb("reviews", "--all").stdout
    assert review[:8] in listed and "closed" in listed

    # Any changed byte of the notice fails verification, saying so.
    tampered = tmp_path / "tampered.dsse.json"
    data = bytearray(notice.read_bytes())
    data[len(data) // 2] ^= 0x01
    tampered.write_bytes(bytes(data))
    failed = wb("notice", "verify", str(tampered), ok=False)
    assert failed.stdout.strip()
