"""What the store *and* the ledger prove about a submission: custody, inspection, finished runs.

Rows in the database are an index anyone with database access could edit; the ledger is signed and
chained. Every check here therefore asks both: is the row there, and does a ledger entry about the
same subject pin the same content (a digest recomputed from the rows now)? The workflow's gates
(`workflow.gates`) and publishing (`workflow.publish`) read their evidence through these functions,
so "what counts as evidence" is decided in one place.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from weighbridge.errors import WeighbridgeError
from weighbridge.ledger.canonical import evidence_digest
from weighbridge.ledger.records import LedgerEntry
from weighbridge.references import registry as references
from weighbridge.services.ledger import entry_of
from weighbridge.store.custody_schema import CustodyObjectRow
from weighbridge.store.db import Store
from weighbridge.store.ledger_schema import LedgerEntryRow
from weighbridge.store.schema import RunRow, SubmissionRow

# How a run's model was opened, as `run.start` and `run.finish` record it.
WEIGHTS_CUSTODY, WEIGHTS_SOURCE, WEIGHTS_ENDPOINT = "custody", "source", "endpoint"


@dataclass(frozen=True)
class RunProof:
    """A finished run whose journal the ledger pins: what a notice may name as its evidence."""

    suite: str
    run_id: str
    journal_digest: str
    reference: str | None = None  # the reference's name, for a reference run

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def trusted_evidence(entry: LedgerEntry) -> dict[str, Any] | None:
    """An entry's readable evidence, only when it matches the digest the entry signs."""
    try:
        evidence = json.loads(entry.evidence_json or "")
    except ValueError:
        return None
    if not isinstance(evidence, dict) or evidence_digest(evidence) != entry.evidence_digest:
        return None
    return evidence


def entries_about(store: Store, subject: str, action: str) -> list[tuple[LedgerEntry, dict[str, Any]]]:
    """Ledger entries of `action` on `subject` whose evidence matches its digest, oldest first."""
    with store.session() as s:
        rows = s.scalars(
            select(LedgerEntryRow)
            .where(LedgerEntryRow.subject == subject, LedgerEntryRow.action == action)
            .order_by(LedgerEntryRow.seq)
        ).all()
    out = []
    for row in rows:
        entry = entry_of(row)
        evidence = trusted_evidence(entry)
        if evidence is not None:
            out.append((entry, evidence))
    return out


def weights_source(store: Store, submission: SubmissionRow) -> str:
    """How an evaluation of `submission` opens its model (see `services.review.evaluation_copy`)."""
    from weighbridge.services.custody import has_custody

    if submission.endpoint_json:
        return WEIGHTS_ENDPOINT
    return WEIGHTS_CUSTODY if has_custody(store, submission.id) else WEIGHTS_SOURCE


# -- custody ------------------------------------------------------------------------------------


def custody_problems(store: Store, submission: SubmissionRow, custody_root: Path) -> list[str]:
    """Why the submission's weights are not verifiably in custody; empty when they are.

    Checked without the master key: every manifest file has a custody object recording its sha256
    and size, the blob on disk hashes to the ciphertext digest recorded at deposit, and a
    `custody.deposit` ledger entry pins the deposit. (`custody verify` decrypts as well; this is
    what any role can check at a gate.)
    """
    if submission.endpoint_json:
        return [f"submission {submission.id[:8]} is an endpoint: there are no weights to hold in custody"]
    manifest = {f["path"]: f for f in json.loads(submission.manifest_json)}
    with store.session() as s:
        objects = s.scalars(select(CustodyObjectRow).where(CustodyObjectRow.submission_id == submission.id)).all()
    if not objects:
        return [f"submission {submission.id[:8]} has no custody deposit"]
    problems = []
    held = {o.path: o for o in objects}
    for path, f in sorted(manifest.items()):
        obj = held.get(path)
        if obj is None:
            problems.append(f"{path} is in the manifest but not in custody")
        elif (obj.plaintext_sha256, obj.plaintext_bytes) != (f["sha256"], f["bytes"]):
            problems.append(f"the custody record of {path} differs from the manifest")
        else:
            problem = _blob_problem(custody_root / obj.blob, obj.ciphertext_sha256)
            if problem:
                problems.append(f"{path}: {problem}")
    problems += [f"{p} is in custody but not in the manifest" for p in sorted(set(held) - set(manifest))]
    if not entries_about(store, submission.id, "custody.deposit"):
        problems.append(f"no custody.deposit ledger entry for submission {submission.id[:8]}")
    return problems


def _blob_problem(blob: Path, expected_sha256: str) -> str | None:
    digest = hashlib.sha256()
    try:
        with blob.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    except FileNotFoundError:
        return f"its encrypted blob {blob} is missing"
    if digest.hexdigest() != expected_sha256:
        return "its encrypted blob changed since the deposit"
    return None


# -- inspection ---------------------------------------------------------------------------------


def inspection_problems(store: Store, submission: SubmissionRow) -> list[str]:
    """Why the submission has no trustworthy inspection; empty when a signed `findings` entry from
    inspection matches the findings stored for it now (a clean model has an entry with none)."""
    entries = [e for e in entries_about(store, submission.id, "findings") if e[1].get("source") == "inspection"]
    if not entries:
        return [f"no inspection findings are recorded in the ledger for submission {submission.id[:8]}"]
    stored = [asdict(f) for f in store.findings(submission.id)]
    signed = [f for _, evidence in entries for f in evidence.get("findings", [])]
    if sorted(map(_key, stored)) != sorted(map(_key, signed)):
        return [f"the stored findings of submission {submission.id[:8]} differ from those the ledger recorded"]
    return []


def _key(finding: dict[str, Any]) -> str:
    return json.dumps(finding, sort_keys=True)


# -- runs ---------------------------------------------------------------------------------------


def run_proof(store: Store, run: RunRow, reference: str | None = None) -> RunProof:
    """The run's proof; a `WeighbridgeError` naming what is wrong when the ledger does not pin it."""
    from weighbridge.services.review import journal_digest

    if run.status != "finished":
        raise WeighbridgeError(f"Run {run.id[:8]} has not finished", "Rerun the evaluation to finish it")
    finished = entries_about(store, run.id, "run.finish")
    if not finished:
        raise WeighbridgeError(f"Run {run.id[:8]} has no run.finish ledger entry", "Evaluate again")
    digest = journal_digest(store.samples(run.id))
    if finished[-1][1].get("journal") != digest:
        raise WeighbridgeError(
            f"The journal of run {run.id[:8]} differs from what the ledger recorded when it finished "
            f"(journal {digest[:12]}, ledger {str(finished[-1][1].get('journal'))[:12]})",
            "The stored answers or verdicts were changed; run `weighbridge ledger verify` and evaluate again",
        )
    return RunProof(run.suite_id, run.id, digest, reference)


def run_weights(store: Store, run: RunRow) -> str | None:
    """How the invocation that finished `run` opened the model, as its `run.finish` entry says."""
    finished = entries_about(store, run.id, "run.finish")
    value = finished[-1][1].get("weights") if finished else None
    return str(value) if value is not None else None


def run_model_digest(store: Store, run: RunRow) -> str | None:
    """The model digest the run's signed `run.start` entry names."""
    started = entries_about(store, run.id, "run.start")
    value = started[0][1].get("model") if started else None
    return str(value) if value is not None else None


def reference_runs(
    store: Store, run: RunRow, names: Sequence[str] | None = None
) -> list[tuple[references.Reference, RunRow]]:
    """Per pinned reference, its latest finished run on exactly `run`'s items, parameters and
    judges (what a review of `run` grades against). Without `names`: every registered reference
    that has one, the built-in default first; with `names`, one missing is an error."""
    refs = [references.get(store, n) for n in names] if names is not None else references.list_references(store)
    if names is None:
        refs.sort(key=lambda r: (r.name != references.DEFAULT_REFERENCE, r.name))
    out = []
    for ref in refs:
        if ref.submission_id == run.submission_id:
            continue
        with store.session() as s:
            found = s.scalars(
                select(RunRow)
                .where(
                    RunRow.submission_id == ref.submission_id,
                    RunRow.status == "finished",
                    RunRow.suite_hash == run.suite_hash,
                    RunRow.params_json == run.params_json,
                    RunRow.judges_json == run.judges_json,
                    RunRow.item_limit.is_(None) if run.item_limit is None else RunRow.item_limit == run.item_limit,
                )
                .order_by(RunRow.finished_at.desc())
            ).first()
        if found is None:
            if names is not None:
                raise WeighbridgeError(
                    f"Reference '{ref.name}' has no finished run on the items and settings of run {run.id[:8]}",
                    f"Run `weighbridge report {run.id[:8]} --reference {ref.name}` first, or leave --reference out",
                )
            continue
        out.append((ref, found))
    return out


def submission_runs(store: Store, submission: SubmissionRow, suite: str) -> list[RunRow]:
    """The submission's finished runs of `suite`, newest first."""
    with store.session() as s:
        return list(
            s.scalars(
                select(RunRow)
                .where(RunRow.submission_id == submission.id, RunRow.suite_id == suite, RunRow.status == "finished")
                .order_by(RunRow.finished_at.desc())
            ).all()
        )


def evaluation_problems(store: Store, submission: SubmissionRow, suite: str) -> tuple[RunRow | None, list[str]]:
    """The newest run of `suite` that is valid evidence for `submission`, or why none is.

    Valid: finished, its journal pinned by the ledger, its `run.start` naming this submission's
    digest, made from the custody copy when the submission has weights, and graded against at
    least one pinned reference with a finished, ledger-pinned run on the same items.
    """
    runs = submission_runs(store, submission, suite)
    if not runs:
        return None, [f"no finished {suite} run of submission {submission.id[:8]}"]
    wanted = WEIGHTS_ENDPOINT if submission.endpoint_json else WEIGHTS_CUSTODY
    reasons: list[str] = []
    for run in runs:
        why = _run_problem(store, submission, run, wanted)
        if why is None:
            return run, []
        reasons.append(f"run {run.id[:8]}: {why}")
    return None, reasons


def _run_problem(store: Store, submission: SubmissionRow, run: RunRow, wanted: str) -> str | None:
    try:
        run_proof(store, run)
    except WeighbridgeError as exc:
        return exc.problem
    if run_model_digest(store, run) != submission.digest:
        return "its run.start entry names another model digest"
    weights = run_weights(store, run)
    if weights != wanted:
        how = {WEIGHTS_SOURCE: "the files where they lay", WEIGHTS_ENDPOINT: "an endpoint"}.get(weights or "", "?")
        return f"it evaluated {how}, not the custody copy" if wanted == WEIGHTS_CUSTODY else f"it evaluated {how}"
    refs = reference_runs(store, run)
    if not refs:
        return "no pinned reference has a finished run on the same items, parameters and judges"
    for ref, ref_run in refs:
        try:
            run_proof(store, ref_run, ref.name)
        except WeighbridgeError as exc:
            return f"reference {ref.name}: {exc.problem}"
    return None
