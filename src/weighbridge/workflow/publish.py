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
from pathlib import Path
from typing import Any

from weighbridge.errors import WeighbridgeError
from weighbridge.services.identity import Actor
from weighbridge.store.db import Store
from weighbridge.workflow.clock import Clock, system_clock
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

    Args:
        report: the `report.json` whose grades the notice carries; default: rebuilt from the
            submission's latest finished hazards run.
        policy: the release policy (built-in name or YAML path) that gives the recommendation.
    """
    from weighbridge.notice import build_notice, grades_from_report, sign_notice, suites_from_report, write_notice
    from weighbridge.notice.statement import NoticeContent, ReviewDates
    from weighbridge.policy import evaluate, facts_from_report, load_policy
    from weighbridge.services.orgkey import organisation_signer
    from weighbridge.store.notice_schema import save_notice

    view = find_review(store, review, clock)
    check(Action.PUBLISH, actor.name, actor.roles, view.status)  # refuse before signing anything
    row = store.find_submission(view.submission_id)
    content_report = _load_report(store, row, report)
    recommendation = evaluate(load_policy(policy), facts_from_report(content_report, card_text=row.card_text))
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
    )
    envelope = sign_notice(build_notice(content), signer)
    path = write_notice(envelope, out_dir)
    save_notice(store, envelope, review_id=view.id, submission_id=row.id)
    detail = {
        "notice": content.notice_id,
        "notice_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "recommended": recommendation.release,
        "release": content.decided_release,
    }
    return act(store, actor, view.id, Action.PUBLISH, detail, clock=clock), path


def _manifest(manifest_json: str) -> list[Any]:
    from weighbridge.domain import ModelFile

    return [ModelFile(**f) for f in json.loads(manifest_json)]


def _load_report(store: Store, row: Any, report: Path | None) -> dict[str, Any]:
    if report is not None:
        try:
            loaded: dict[str, Any] = json.loads(report.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise WeighbridgeError(f"Cannot read the report {report}: {exc}", "Give a report.json") from None
        return loaded
    from weighbridge.services.review import recorded_model, report_for_run

    run = store.latest_finished_run(row.id, "hazards")
    if run is None:
        raise WeighbridgeError(
            f"Submission {row.id[:8]} has no finished evaluation to publish grades from",
            f"Run `weighbridge evaluate {row.id[:8]}` or give --report",
        )
    return report_for_run(store, run, recorded_model(row))
