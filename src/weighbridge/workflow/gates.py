"""Evidence gates: a review moves forward only on what the store and the ledger show happened.

Each forward step out of a state names the evidence that state's work must have produced:

- submitted → in_custody: a verified custody deposit of every manifest file;
- inspecting → evaluating: signed inspection findings for the submission;
- evaluating → findings: a finished run of every suite the policy reads, on this submission's
  digest, made from the custody copy, graded against a pinned reference's finished run, each
  journal pinned by the ledger.

A refusal lists everything missing and how to produce it. An admin may override a gate with a
reason; that is its own ledger entry (`review.override`) and stays visible on the review.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from weighbridge.policy.model import Policy
from weighbridge.services.custody import default_custody_root
from weighbridge.services.evidence import (
    custody_problems,
    evaluation_problems,
    inspection_problems,
    reference_runs,
    run_proof,
)
from weighbridge.store.db import Store
from weighbridge.store.schema import SubmissionRow
from weighbridge.workflow.states import Action


@dataclass(frozen=True)
class Missing:
    """One piece of evidence a step needs and does not have, with the command that produces it."""

    what: str
    how: str


@dataclass(frozen=True)
class GateResult:
    missing: tuple[Missing, ...]
    evidence: dict[str, str]  # what was found, recorded on the workflow event

    @property
    def passed(self) -> bool:
        return not self.missing


def required_suites(policy: Policy) -> tuple[str, ...]:
    """The suites a policy's rules read: those with per-category conditions, and the hazard suite
    when a rule fires on missing hazard evidence. Never empty: a release rests on the hazard suite."""
    suites = {r.when.suite for r in policy.rules if r.when.has_category_predicate}
    if any({"hazards", "grades"} & set(r.when.missing or ()) for r in policy.rules):
        suites.add("hazards")
    return tuple(sorted(suites or {"hazards"}))


def check_gate(store: Store, submission: SubmissionRow, action: Action, policy: Policy) -> GateResult:
    """What `action` needs that is missing, and the evidence found (see the module docstring)."""
    sid = submission.id[:8]
    if action is Action.TAKE_CUSTODY:
        problems = custody_problems(store, submission, default_custody_root())
        how = f"Deposit the files with `weighbridge custody deposit {sid}` and check `weighbridge custody verify {sid}`"
        return GateResult(tuple(Missing(p, how) for p in problems), {"custody": "verified" if not problems else ""})
    if action is Action.EVALUATE:
        problems = inspection_problems(store, submission)
        how = "Inspection runs when the model is submitted: submit it with `weighbridge submit`"
        return GateResult(tuple(Missing(p, how) for p in problems), {"inspection": "signed" if not problems else ""})
    if action is Action.RECORD_FINDINGS:
        return _evaluation_gate(store, submission, policy)
    return GateResult((), {})


def _evaluation_gate(store: Store, submission: SubmissionRow, policy: Policy) -> GateResult:
    missing: list[Missing] = []
    runs: list[dict[str, object]] = []
    for suite in required_suites(policy):
        run, problems = evaluation_problems(store, submission, suite)
        if run is None:
            how = (
                f"Evaluate the custody copy: `weighbridge evaluate {submission.id[:8]} --suite {suite}` with a "
                "pinned reference run on the same items (`weighbridge review` runs both)"
            )
            missing += [Missing(p, how) for p in problems]
            continue
        runs.append(run_proof(store, run).as_dict())
        runs += [run_proof(store, ref_run, ref.name).as_dict() for ref, ref_run in reference_runs(store, run)]
    evidence = {"policy": f"{policy.id} {policy.version}", "runs": json.dumps(runs, sort_keys=True)} if runs else {}
    return GateResult(tuple(missing), evidence if not missing else {})
