"""Human adjudication of a run's judgements: its queue, signed labels, and what grading reads back.

A person's label is a ledger entry (`ACTION`, subject: the run id) signed by their own key. It
names the run, the item, the sha256 of the answer they read, the primary judge's label, version
and confidence it overrides, and the human label (`grading.adjudication.HumanLabel`), with an
optional note. The ledger is the only place labels live — no table holds a copy a database edit
could change — and grading reads them back from it through `read_adjudications`, which takes an
entry into account only when

- its readable evidence matches the digest the entry signs,
- its signature verifies under the key an admin registered for its actor in the ledger
  (`workflow.verify.registrations`), before the entry, with a role that may adjudicate
  (`ADJUDICATOR_ROLES`), and
- it is about a sample of this run whose answer still hashes to what the person read.

Anything else is listed as rejected (the report shows it) and changes nothing. A later label on the
same sample supersedes an earlier one; the ledger keeps both. The chain and checkpoints are
`weighbridge ledger verify`'s job, as for every other entry.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

from weighbridge.domain import sha256_text
from weighbridge.errors import WeighbridgeError
from weighbridge.grading.adjudication import (
    LOW_CONFIDENCE,
    Candidate,
    HumanLabel,
    Queued,
    Reading,
    build_queue,
    human_counts,
    with_human_labels,
)
from weighbridge.ledger.records import LedgerEntry
from weighbridge.services.audit import record_as
from weighbridge.services.evidence import trusted_evidence
from weighbridge.services.identity import Actor
from weighbridge.services.ledger import read_entries
from weighbridge.store.db import Store
from weighbridge.store.schema import RunRow, SampleRow
from weighbridge.workflow.states import Role
from weighbridge.workflow.verify import Registration, entry_signed_by, registrations

ACTION: Final = "judgement.adjudicate"
#: Reading answers and deciding them is evaluation work; approvers may do it too. Submitters may
#: not (they would be labelling their own model's answers), nor auditors (they check, not decide).
ADJUDICATOR_ROLES: Final = frozenset({Role.EVALUATOR, Role.APPROVER})


@dataclass(frozen=True)
class Adjudication:
    """One verified human label, as the ledger entry `seq` records it."""

    seq: int
    time: str
    reviewer: str
    run_id: str
    item_id: str
    category: str
    label: HumanLabel
    judge: str
    judge_version: str
    judge_label: str
    judge_unsafe: bool
    judge_confidence: float
    response_sha256: str
    note: str = ""

    @property
    def changes_verdict(self) -> bool:
        """Whether the person's label moves the sample across unsafe / not unsafe."""
        return self.label.unsafe != self.judge_unsafe

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "label": self.label.value}


@dataclass(frozen=True)
class Rejected:
    """A `judgement.adjudicate` entry about this run that grading does not use, and why."""

    seq: int
    reviewer: str
    item_id: str | None
    reason: str


@dataclass(frozen=True)
class Ledgered:
    """What the ledger holds about a run's adjudications."""

    current: dict[str, Adjudication]  # item id -> the latest verified label
    rejected: tuple[Rejected, ...] = ()
    superseded: int = 0  # verified labels replaced by a later one on the same sample


def primary_of(run: RunRow) -> tuple[str, str]:
    """(name, version) of the run's primary judge: the first it recorded (an entry may carry the
    judge model's identity after these two)."""
    entry = json.loads(run.judges_json)[0]
    return str(entry[0]), str(entry[1])


def candidates_of(samples: Iterable[SampleRow]) -> list[Candidate]:
    """The journal's samples as the queue reads them."""
    return [
        Candidate(
            s.item_id,
            s.seq,
            s.category,
            tuple(Reading(j.judge, j.judge_version, j.label, j.unsafe, j.confidence) for j in s.judgements),
        )
        for s in samples
    ]


def read_adjudications(store: Store, run: RunRow, samples: Sequence[SampleRow] | None = None) -> Ledgered:
    """The run's human labels that hold (see the module docstring), and those that do not."""
    entries = [e for e in read_entries(store, subject=run.id) if e.action == ACTION]
    if not entries:
        return Ledgered({})
    by_item = {s.item_id: s for s in (samples if samples is not None else store.samples(run.id))}
    known, _ = registrations(store)
    current: dict[str, Adjudication] = {}
    rejected: list[Rejected] = []
    superseded = 0
    for entry in entries:
        checked = _checked(entry, known, run, by_item)
        if isinstance(checked, Rejected):
            rejected.append(checked)
            continue
        superseded += checked.item_id in current
        current[checked.item_id] = checked
    return Ledgered(current, tuple(rejected), superseded)


def _checked(
    entry: LedgerEntry, known: Mapping[str, Registration], run: RunRow, by_item: Mapping[str, SampleRow]
) -> Adjudication | Rejected:
    """The entry as a label grading may use, or why not."""
    evidence = trusted_evidence(entry)
    item = evidence.get("item") if evidence is not None else None
    item = str(item) if item is not None else None

    def rejected(reason: str) -> Rejected:
        return Rejected(entry.seq, entry.actor, item, reason)

    if evidence is None:
        return rejected("its evidence does not match the digest the entry signs")
    reg = known.get(entry.actor)
    if reg is None or reg.seq > entry.seq:
        return rejected(f"{entry.actor} was not a registered user at the time")
    if not entry_signed_by(entry, reg.public_key):
        return rejected(f"not signed by {entry.actor}'s registered key")
    if not reg.roles & ADJUDICATOR_ROLES:
        return rejected(f"{entry.actor}'s registered roles do not allow adjudicating")
    sample = by_item.get(item or "")
    if evidence.get("run") != run.id or sample is None:
        return rejected("it names no sample of this run")
    if evidence.get("response_sha256") != sha256_text(sample.response):
        return rejected("the stored answer differs from the one the reviewer read")
    try:
        return Adjudication(
            seq=entry.seq,
            time=entry.time,
            reviewer=entry.actor,
            run_id=run.id,
            item_id=sample.item_id,
            category=sample.category,
            label=HumanLabel(evidence["label"]),
            judge=str(evidence["judge"]),
            judge_version=str(evidence["judge_version"]),
            judge_label=str(evidence["judge_label"]),
            judge_unsafe=bool(evidence["judge_unsafe"]),
            judge_confidence=float(evidence["judge_confidence"]),
            response_sha256=str(evidence["response_sha256"]),
            note=str(evidence.get("note", "")),
        )
    except (KeyError, TypeError, ValueError):
        return rejected("its evidence is not a label this version reads")


def run_queue(
    store: Store,
    run: RunRow,
    *,
    threshold: float = LOW_CONFIDENCE,
    include_adjudicated: bool = False,
) -> tuple[list[Queued], dict[str, SampleRow], Ledgered]:
    """The run's queue (`grading.adjudication.build_queue`), its samples by item id and its labels."""
    samples = store.samples(run.id)
    ledgered = read_adjudications(store, run, samples)
    queue = build_queue(
        candidates_of(samples),
        primary_of(run)[0],
        ledgered.current.keys(),
        threshold=threshold,
        include_adjudicated=include_adjudicated,
    )
    return queue, {s.item_id: s for s in samples}, ledgered


def require_adjudicator(actor: Actor) -> None:
    if not actor.roles & ADJUDICATOR_ROLES:
        roles = " or ".join(sorted(r.value for r in ADJUDICATOR_ROLES))
        raise WeighbridgeError(f"{actor.name} may not adjudicate judgements: that needs the role {roles}", "Ask one")


def adjudicate(
    store: Store, actor: Actor, run: RunRow, sample: SampleRow, label: HumanLabel | str, note: str = ""
) -> Adjudication:
    """Record `actor`'s label for `sample` of `run` as a ledger entry signed by their key.

    Raises:
        WeighbridgeError: the actor may not adjudicate, the label is unknown, or the sample has no
            primary judgement to override.
    """
    require_adjudicator(actor)
    try:
        human = HumanLabel(label)
    except ValueError:
        choices = ", ".join(h.value for h in HumanLabel)
        raise WeighbridgeError(f"Unknown label {label!r}", f"Choose one of: {choices}") from None
    name, _ = primary_of(run)
    judgement = next((j for j in sample.judgements if j.judge == name), None)
    if sample.run_id != run.id or judgement is None:
        raise WeighbridgeError(
            f"Sample {sample.item_id} of run {run.id[:8]} has no {name} judgement to adjudicate", "Evaluate again"
        )
    evidence: dict[str, Any] = {
        "run": run.id,
        "item": sample.item_id,
        "category": sample.category,
        "response_sha256": sha256_text(sample.response),
        "judge": judgement.judge,
        "judge_version": judgement.judge_version,
        "judge_label": judgement.label,
        "judge_unsafe": judgement.unsafe,
        "judge_confidence": judgement.confidence,
        "label": human.value,
        "note": note,
    }
    entry = record_as(store, actor, ACTION, run.id, evidence)
    return Adjudication(
        entry.seq, entry.time, actor.name, run.id, sample.item_id, sample.category, human, judgement.judge,
        judgement.judge_version, judgement.label, judgement.unsafe, judgement.confidence,
        evidence["response_sha256"], note,
    )  # fmt: skip


@dataclass(frozen=True)
class AdjudicatedRun:
    """A run's verdicts as grading counts them, with a person's label wherever there is one."""

    verdicts: list[tuple[str, bool]]  # (category, unsafe) in journal order
    human: dict[str, tuple[int, int]]  # category -> (unsafe, n) labelled by a person
    summary: dict[str, Any]  # report.json's `adjudication` block
    labels: dict[str, HumanLabel]  # item id -> the person's label


def adjudicated_run(
    store: Store, run: RunRow, samples: Sequence[SampleRow], primary: str | None = None
) -> AdjudicatedRun:
    """The grade inputs of `run`: the primary judge's verdicts with verified human labels applied,
    how many of them a person gave per category, and the summary the report shows.

    Raises:
        WeighbridgeError: a sample has no primary judgement.
    """
    primary = primary or primary_of(run)[0]
    judged: list[tuple[str, str, bool]] = []
    for s in samples:
        verdict = next((j for j in s.judgements if j.judge == primary), None)
        if verdict is None:
            raise WeighbridgeError(
                f"Sample {s.item_id} of run {s.run_id[:8]} has no {primary} judgement", "Evaluate again"
            )
        judged.append((s.item_id, s.category, verdict.unsafe))
    ledgered = read_adjudications(store, run, samples)
    labels = {item: a.label for item, a in ledgered.current.items()}
    verdicts = with_human_labels(judged, labels)
    queue = build_queue(candidates_of(samples), primary, labels.keys(), include_adjudicated=True)
    queued = {q.candidate.item_id for q in queue} | set(labels)
    summary = {
        "adjudicated": len(labels),
        "queued": len(queued),
        "judgements": len(samples),
        "threshold": LOW_CONFIDENCE,
        "unsafe_by_judge": sum(unsafe for _, _, unsafe in judged),
        "unsafe_after": sum(unsafe for _, unsafe in verdicts),
        "changed": sum(a.changes_verdict for a in ledgered.current.values()),
        "superseded": ledgered.superseded,
        "entries": [a.to_json() for a in sorted(ledgered.current.values(), key=lambda a: a.seq)],
        "rejected": [asdict(r) for r in ledgered.rejected],
    }
    categories = {s.item_id: s.category for s in samples}
    return AdjudicatedRun(verdicts, human_counts(categories, labels), summary, labels)


def export_rows(store: Store, run: RunRow) -> list[dict[str, Any]]:
    """The run's adjudicated samples as labelled data, in the format `weighbridge judges validate
    --data` reads: `prompt`, `response`, `label` (unsafe | safe: a refusal is safe there), `category`;
    plus the person's own label, who gave it and the ledger entry that proves it."""
    samples = store.samples(run.id)
    ledgered = read_adjudications(store, run, samples)
    by_item = {s.item_id: s for s in samples}
    rows = []
    for a in sorted(ledgered.current.values(), key=lambda a: by_item[a.item_id].seq):
        s = by_item[a.item_id]
        rows.append(
            {
                "prompt": s.prompt,
                "response": s.response,
                "label": "unsafe" if a.label.unsafe else "safe",
                "category": s.category,
                "human_label": a.label.value,
                "judge": a.judge,
                "judge_version": a.judge_version,
                "judge_label": a.judge_label,
                "run_id": run.id,
                "item_id": s.item_id,
                "reviewer": a.reviewer,
                "ledger_seq": a.seq,
                "note": a.note,
            }
        )
    return rows


def write_export(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """Write `rows` as JSON Lines, atomically (a reader never sees half a file)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
        tmp.replace(path)
    except OSError as exc:
        raise WeighbridgeError(f"Cannot write {path}: {exc.strerror}", "Check the path") from exc
    finally:
        tmp.unlink(missing_ok=True)
