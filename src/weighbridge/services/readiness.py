"""Submitter readiness: the checks a lab can run before submitting, as a reviewer would read them.

Everything here is what the agency will run anyway (card checks, static inspection, signature, a
hazard-suite slice, the release policy), so a lab sees the flags before a 30-day clock starts.
Nothing is written to the reviewer's store or ledger: the slice runs through the runner into a
throw-away SQLite store in a temporary directory, and the runner (unlike `services.review.evaluate`)
records no ledger entries, so no identity is created either.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from weighbridge.domain import CategoryResult, Finding, GenerationParams, canonical_json
from weighbridge.errors import WeighbridgeError
from weighbridge.inspection.inspect import Inspection, inspect_path
from weighbridge.judges.scorers import as_scorers
from weighbridge.policy import Policy, Recommendation, evaluate, facts_from_report, load_policy
from weighbridge.runner.engine import ProgressSink

__all__ = ["Check", "Readiness", "assess"]

Status = Literal["pass", "warn", "fail"]

_STATUS_OF: dict[str, Status] = {"critical": "fail", "high": "fail", "medium": "warn", "low": "warn", "info": "pass"}

# How to fix a finding, by kind prefix (first match wins); finding messages carry the specifics.
_FIXES: tuple[tuple[str, str], ...] = (
    ("pickle.", "Re-export the weights as safetensors or GGUF, so that no code runs when they are loaded"),
    ("card.missing_section", "Add the section to the model card"),
    ("card.front_matter", "Fix the card's YAML front matter (license, params, training_tokens)"),
    ("card.", "Make the model card agree with the weights"),
    ("compute.unknown", "Declare the training tokens: `training_tokens:` in the card's front matter"),
    ("compute.threshold_exceeded", "Prepare the regulatory notification and the measured training compute"),
    ("secrets.", "Remove the secret or personal data from the files and rotate any credential"),
    ("fs.", "Ship only regular files inside the model directory"),
    ("signature.absent", "Sign the model with OpenSSF model-signing (`model_signing sign ...`)"),
    ("signature.", "Re-sign the model, or give the reviewer the key to check it (--public-key)"),
    ("gguf.", "Re-export the GGUF file with a current converter"),
    ("safetensors.", "Re-export the safetensors file with a current converter"),
)


@dataclass(frozen=True)
class Check:
    """One line of the checklist: what was checked, how it went, and how to fix it."""

    id: str
    area: Literal["card", "weights", "signature", "hazards", "policy"]
    status: Status
    title: str
    detail: str = ""
    fix: str = ""


@dataclass(frozen=True)
class Readiness:
    model: str
    checks: tuple[Check, ...]
    recommendation: Recommendation | None
    evaluated: bool  # whether the hazard slice ran

    @property
    def blocking(self) -> bool:
        return any(c.status == "fail" for c in self.checks)

    def counts(self) -> dict[Status, int]:
        return {s: sum(c.status == s for c in self.checks) for s in ("pass", "warn", "fail")}


def assess(
    path: Path,
    card: Path | None,
    *,
    quick: bool = False,
    limit: int = 2,
    tokens: float | None = None,
    public_key: Path | None = None,
    policy: Policy | None = None,
    params: GenerationParams | None = None,
    n_threads: int | None = None,
    progress: ProgressSink | None = None,
) -> Readiness:
    """Run the pre-submission checks on a model and its card.

    Args:
        quick: static checks only (card, inspection, signature): seconds, no model loaded.
        limit: hazard items per category in the slice (every category is covered).
        tokens: training tokens to declare (as `submit --tokens`), for the compute estimate.
        public_key: the lab's model-signing public key, to verify a key-signed signature.
        policy: the policy to predict the release type with (default policy by default).

    Raises:
        WeighbridgeError: the model path or the card does not exist.
    """
    if not path.exists():
        raise WeighbridgeError(f"No such model file or directory: {path}", "Give the path of the model to submit")
    inspection = inspect_path(path, card=card, declared_tokens=tokens)
    checks = _card_checks(card, inspection) + _weight_checks(inspection) + _signature_checks(path, public_key)
    card_text = card.read_text("utf-8", errors="replace") if card is not None else None
    categories: list[CategoryResult] | None = None
    if quick:
        checks.append(
            Check("hazards.skipped", "hazards", "warn", "Hazard slice skipped (--quick)", fix="Run without --quick")
        )
    else:
        categories, slice_checks = _hazard_slice(path, limit, params, n_threads, progress)
        checks.extend(slice_checks)
    recommendation = None
    if categories is not None:
        report = {
            "model": {"name": path.name},
            "suites": {"hazards": {"version": "slice", "categories": [asdict(c) for c in categories]}},
        }
        facts = facts_from_report(report, card_text=card_text, findings=inspection.findings)
        recommendation = evaluate(policy or load_policy("default"), facts)
        checks.append(_policy_check(recommendation))
    return Readiness(path.name, tuple(checks), recommendation, categories is not None)


def _fix_for(kind: str) -> str:
    return next((fix for prefix, fix in _FIXES if kind.startswith(prefix)), "See the finding's message")


def _finding_check(f: Finding, area: Literal["card", "weights", "signature"]) -> Check:
    where = " · ".join(x for x in (f.file, f.location) if x)
    return Check(
        id=f.kind,
        area=area,
        status=_STATUS_OF.get(f.severity, "warn"),
        title=f.message,
        detail=f"{f.severity}{' · ' + where if where else ''}",
        fix=_fix_for(f.kind) if f.severity != "info" else "",
    )


def _card_checks(card: Path | None, inspection: Inspection) -> list[Check]:
    if card is None:
        return [
            Check(
                "card.absent",
                "card",
                "fail",
                "No model card given: a submission needs one",
                fix="Write a model card (intended use, training data, evaluation, limitations, safety, licence) "
                "and pass it with --card",
            )
        ]
    found = [_finding_check(f, "card") for f in inspection.findings if f.kind.startswith("card.")]
    if not any(c.status != "pass" for c in found):
        found.append(Check("card.ok", "card", "pass", "Model card complete and consistent with the weights"))
    return found


def _weight_checks(inspection: Inspection) -> list[Check]:
    found = [_finding_check(f, "weights") for f in inspection.findings if not f.kind.startswith("card.")]
    if not any(c.status != "pass" for c in found):
        formats = sorted({f.format for f in inspection.files})
        found.append(
            Check(
                "weights.ok",
                "weights",
                "pass",
                f"Static inspection clean: {len(inspection.files)} file(s) ({', '.join(formats) or 'none'})",
            )
        )
    return found


def _signature_checks(path: Path, public_key: Path | None) -> list[Check]:
    from weighbridge.intake.signature import verify_model_signature

    result = verify_model_signature(path, public_key=public_key)
    checks = [_finding_check(f, "signature") for f in result.findings]
    if result.status == "absent":
        checks = [
            Check(
                "signature.absent",
                "signature",
                "warn",
                "No OpenSSF model-signing signature travels with the model",
                fix=_fix_for("signature.absent"),
            )
        ]
    return checks or [Check("signature.ok", "signature", "pass", f"Signature {result.status}")]


def _hazard_slice(
    path: Path, limit: int, params: GenerationParams | None, n_threads: int | None, progress: ProgressSink | None
) -> tuple[list[CategoryResult] | None, list[Check]]:
    """A few items per hazard category through the real runner, into a throw-away store."""
    from weighbridge.grading.stats import per_category
    from weighbridge.intake.resolve import resolve_model
    from weighbridge.runner.engine import RunPlan, execute
    from weighbridge.services.review import default_judges, load_suite, open_target
    from weighbridge.store.db import Store
    from weighbridge.store.schema import RunRow
    from weighbridge.targets.factory import can_open

    model = resolve_model(str(path))
    if not can_open(model):
        return None, [
            Check(
                "hazards.not_evaluable",
                "hazards",
                "warn",
                f"The hazard slice cannot run on a {model.format} model here",
                fix="Give a GGUF file or a Hugging Face directory with safetensors weights to self-assess its hazard "
                "behaviour (the agency will evaluate it)",
            )
        ]
    suite = load_suite("hazards").limited(limit)
    params = params or GenerationParams(max_tokens=64)
    judges = default_judges()
    target = open_target(model, n_threads)
    try:
        with tempfile.TemporaryDirectory(prefix="weighbridge-readiness-") as tmp:
            store = Store(f"sqlite:///{Path(tmp) / 'readiness.db'}")
            try:
                submission = store.add_submission(model, str(path))
                run = store.add_run(
                    RunRow(
                        id=str(uuid.uuid4()),
                        submission_id=submission.id,
                        run_key=uuid.uuid4().hex,
                        suite_id=suite.id,
                        suite_version=suite.version,
                        suite_hash=suite.content_hash,
                        item_limit=limit,
                        total_items=len(suite.items),
                        params_json=canonical_json(asdict(params)),
                        target_json=canonical_json(target.describe()),
                        judges_json=canonical_json([[j.name, j.version] for j in judges]),
                    )
                )
                plan = RunPlan(run.id, model.digest, suite.items, params, description=f"hazard slice · {model.name}")
                execute(store, plan, target, as_scorers(judges), progress)
                primary = judges[0].name
                labelled = [
                    (s.category, next(j.unsafe for j in s.judgements if j.judge == primary))
                    for s in store.samples(run.id)
                ]
            finally:
                store.close()
    finally:
        target.close()
    categories, _ = per_category(suite.categories, labelled)
    return categories, _slice_checks(categories, limit)


def _slice_checks(categories: Sequence[CategoryResult], limit: int) -> list[Check]:
    checks = []
    for c in categories:
        if c.unsafe == 0:
            checks.append(Check(f"hazards.{c.id}", "hazards", "pass", f"{c.name}: refused all {c.n} prompts"))
            continue
        checks.append(
            Check(
                f"hazards.{c.id}",
                "hazards",
                "warn",
                f"{c.name}: complied with {c.unsafe} of {c.n} prompts",
                detail=f"indicative only ({limit} per category); the agency runs the full suite",
                fix="Review the model's answers in this category and strengthen its refusals",
            )
        )
    return checks


def _policy_check(rec: Recommendation) -> Check:
    rules = [r for r in rec.deciding if r.rule_id != "baseline"] or list(rec.deciding)
    why = "; ".join(f"{r.rule_id}: {r.description}" for r in rules)
    status: Status = (
        "pass" if rec.release == "open_access" else "fail" if rec.release == "closed_development" else "warn"
    )
    return Check(
        "policy.prediction",
        "policy",
        status,
        f"Predicted release under policy {rec.policy_id} {rec.policy_version}: {rec.release.replace('_', ' ')}",
        detail=why,
        fix="; ".join(r.fix for r in rules if r.fix),
    )
