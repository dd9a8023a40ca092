"""Publishing a decided review: the signed public notice, then the `publish` step of the workflow.

The notice binds the submission's files, the grades of its report, the release the policy
recommends (with the rules that fired) and the release the approvers decided, and is signed by the
organisation key. The publishing approver's own signature goes on the workflow event and its
ledger entry, which records the notice's digest — so the ledger says who published which bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from weighbridge.errors import WeighbridgeError
from weighbridge.policy.model import Policy
from weighbridge.services.evidence import RunProof
from weighbridge.services.identity import Actor
from weighbridge.store.db import Store
from weighbridge.store.schema import RunRow, SubmissionRow
from weighbridge.workflow.clock import Clock, system_clock
from weighbridge.workflow.gates import required_suites
from weighbridge.workflow.service import ReviewView, act, find_review
from weighbridge.workflow.states import Action, check

DEFAULT_ORGANISATION = "weighbridge reviewer"


def organisation_name() -> str:
    """`WEIGHBRIDGE_ORG`, the name the public reads on notices; a neutral default for local use."""
    return os.environ.get("WEIGHBRIDGE_ORG") or DEFAULT_ORGANISATION


def publish_notice(
    store: Store,
    actor: Actor,
    review: str,
    out_dir: Path,
    *,
    report: Path | None = None,
    policy: str = "default",
    clock: Clock = system_clock,
) -> tuple[ReviewView, Path]:
    """Write the signed notice of a decided review into `out_dir` and move the review to published.

    The grades always come from this submission's own runs, read from the store and checked
    against the ledger (`bound_report`); the notice names each run and its journal digest.

    Args:
        report: a `report.json` choosing which runs the notice carries; refused unless its model,
            runs, suites, references and grades are this submission's as the store and ledger hold
            them. Default: the newest runs that pass the evaluation gate, for every suite the policy reads.
        policy: the release policy (built-in name or YAML path) that gives the recommendation.
    """
    from weighbridge.notice import build_notice, grades_from_report, sign_notice, suites_from_report, write_notice
    from weighbridge.notice.statement import NoticeContent, ReviewDates, RunRecord
    from weighbridge.policy import evaluate, facts_from_report, load_policy
    from weighbridge.services.orgkey import organisation_signer
    from weighbridge.store.notice_schema import save_notice

    view = find_review(store, review, clock)
    check(Action.PUBLISH, actor.name, actor.roles, view.status)  # refuse before signing anything
    row = store.find_submission(view.submission_id)
    loaded_policy = load_policy(policy)
    content_report, proofs = bound_report(store, row, loaded_policy, _read_report(report) if report else None)
    recommendation = evaluate(loaded_policy, facts_from_report(content_report, card_text=row.card_text))
    decided = view.events[-1]  # check() guarantees the review is in `decided`: its last event decided it
    signer = organisation_signer()
    content = NoticeContent(
        notice_id=uuid.uuid4().hex,
        model_name=row.name,
        model_format=row.format,
        files=tuple(_manifest(row.manifest_json)),
        suites=suites_from_report(content_report),
        grades=grades_from_report(content_report),
        recommended_release=recommendation.release,
        decided_release=decided.detail.get("release", ""),
        policy_id=recommendation.policy_id,
        policy_version=recommendation.policy_version,
        dates=ReviewDates(submitted=row.created_at, published=clock(), decided=view.event_times[-1]),
        organisation=organisation_name(),
        reviewer_public_key=signer.public_key,
        review_id=view.id,
        rationale=tuple(f"{r.rule_id}: {r.because}" for r in recommendation.fired_rules),
        runs=tuple(RunRecord(**p.as_dict()) for p in proofs),
    )
    envelope = sign_notice(build_notice(content), signer)
    path = write_notice(envelope, out_dir)
    save_notice(store, envelope, review_id=view.id, submission_id=row.id)
    detail = {
        "notice": content.notice_id,
        "notice_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "recommended": recommendation.release,
        "release": content.decided_release,
        "runs": ",".join(f"{p.run_id}:{p.journal_digest}" for p in proofs),
    }
    return act(store, actor, view.id, Action.PUBLISH, detail, clock=clock), path


def _manifest(manifest_json: str) -> list[Any]:
    from weighbridge.domain import ModelFile

    return [ModelFile(**f) for f in json.loads(manifest_json)]


def _read_report(report: Path) -> dict[str, Any]:
    try:
        loaded = json.loads(report.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise WeighbridgeError(f"Cannot read the report {report}: {exc}", "Give a report.json") from None
    if not isinstance(loaded, dict):
        raise WeighbridgeError(f"{report} is not a weighbridge report.json", "Give the report.json of a review")
    return loaded


def bound_report(
    store: Store, row: SubmissionRow, policy: Policy, given: dict[str, Any] | None
) -> tuple[dict[str, Any], list[RunProof]]:
    """The report a notice may carry for `row`, rebuilt from the store, and the runs it rests on.

    With `given` (a report.json), its runs are used only when everything it names is this
    submission's: model digest, run ids, suite digests, references' runs, journal digests and the
    grades themselves (a report whose grades were edited is refused, naming the first difference).
    """
    from weighbridge.notice import grades_from_report
    from weighbridge.services.evidence import evaluation_problems, reference_runs, run_proof
    from weighbridge.services.review import recorded_model, report_for_run, stored_reference

    runs: list[RunRow] = []
    if given is None:
        for suite in required_suites(policy):
            run, problems = evaluation_problems(store, row, suite)
            if run is None:
                raise WeighbridgeError(
                    f"Submission {row.id[:8]} has no {suite} run a notice can rest on: {'; '.join(problems)}",
                    f"Evaluate the custody copy: `weighbridge evaluate {row.id[:8]} --suite {suite}`, with a "
                    "pinned reference run on the same items",
                )
            runs.append(run)
    else:
        runs = [_run_named_by(store, row, given)]
    model = recorded_model(row)
    proofs: list[RunProof] = []
    merged: dict[str, Any] | None = None
    for run in runs:
        refs = reference_runs(store, run)
        proofs.append(run_proof(store, run))
        proofs += [run_proof(store, ref_run, ref.name) for ref, ref_run in refs]
        primary = json.loads(run.judges_json)[0][0]
        built = report_for_run(
            store, run, model, references=[stored_reference(store, r, rr, primary) for r, rr in refs]
        )
        if merged is None:
            merged = built
        else:
            merged["suites"] |= built["suites"]
    assert merged is not None
    if given is not None:
        _same_as_store(given, merged, proofs, grades_from_report)
    return merged, proofs


def _run_named_by(store: Store, row: SubmissionRow, given: dict[str, Any]) -> RunRow:
    from weighbridge.services.evidence import evaluation_problems

    digest = (given.get("model") or {}).get("digest")
    if digest != row.digest:
        raise WeighbridgeError(
            f"The report is of model digest {str(digest)[:12]}…, not of this submission's {row.digest[:12]}…",
            "Give the report of this submission's evaluation, or leave --report out",
        )
    run_id = str((given.get("run") or {}).get("id") or "")
    with store.session() as s:
        run = s.get(RunRow, run_id) if run_id else None
    if run is None or run.submission_id != row.id:
        raise WeighbridgeError(
            f"The report's run {run_id[:8] or '(none)'} is not a run of submission {row.id[:8]}",
            "Give the report of this submission's evaluation, or leave --report out",
        )
    suite = (given.get("suites") or {}).get(run.suite_id) or {}
    if suite.get("content_hash") != run.suite_hash:
        raise WeighbridgeError(
            f"The report's {run.suite_id} suite digest {str(suite.get('content_hash'))[:12]}… is not the one run "
            f"{run.id[:8]} asked ({run.suite_hash[:12]}…)",
            "Give the report of this run, unedited",
        )
    valid, problems = evaluation_problems(store, row, run.suite_id)
    if valid is None or valid.id != run.id:
        why = next((p for p in problems if run.id[:8] in p), "a newer run is the evidence")
        raise WeighbridgeError(f"Run {run.id[:8]} cannot carry a notice: {why}", "Evaluate the custody copy again")
    return run


def _same_as_store(
    given: dict[str, Any], built: dict[str, Any], proofs: list[RunProof], grades_of: Callable[[Any], Any]
) -> None:
    """Refuse a report whose references, journal digest or grades differ from the store's."""
    named = {str(r.get("run_id")) for r in given.get("references") or []}
    pinned = {p.run_id for p in proofs if p.reference is not None}
    if named != pinned:
        raise WeighbridgeError(
            f"The report's reference runs ({', '.join(sorted(x[:8] for x in named)) or 'none'}) are not the pinned "
            f"references' runs on the same items ({', '.join(sorted(x[:8] for x in pinned)) or 'none'})",
            "Rebuild the report with `weighbridge report RUN`, or leave --report out",
        )
    journal = (given.get("run") or {}).get("journal_digest")
    if journal is not None and journal != proofs[0].journal_digest:
        raise WeighbridgeError(
            f"The report's journal digest {str(journal)[:12]}… differs from the ledger's "
            f"{proofs[0].journal_digest[:12]}…",
            "The report is not of this run's journal; rebuild it with `weighbridge report RUN`",
        )
    for mine, theirs in zip(grades_of(built), grades_of(given), strict=False):
        if (mine.category, mine.n, mine.unsafe, mine.grade) != (theirs.category, theirs.n, theirs.unsafe, theirs.grade):
            raise WeighbridgeError(
                f"The report's {theirs.name} says {theirs.unsafe}/{theirs.n} unsafe, grade {theirs.grade}; the run's "
                f"journal gives {mine.unsafe}/{mine.n}, grade {mine.grade}",
                "The report was edited or is stale; rebuild it with `weighbridge report RUN`, or leave --report out",
            )
    if len(grades_of(built)) != len(grades_of(given)):
        raise WeighbridgeError(
            "The report grades other categories than the run's journal", "Rebuild it with `weighbridge report RUN`"
        )
