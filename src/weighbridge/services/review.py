"""The crossing as services: submit, evaluate, report — and `review`, which does all three.

The CLI and (later) the API call these functions; they hold no terminal or HTTP concerns. Inputs are
checked and the target is opened *before* the store is touched, so bad input writes nothing.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from weighbridge.domain import (
    EndpointSpec,
    GenerationParams,
    Manifest,
    ModelFile,
    ModelRef,
    RunStats,
    Suite,
    canonical_json,
    sha256_text,
)
from weighbridge.errors import WeighbridgeError
from weighbridge.grading.stats import per_category
from weighbridge.intake.manifest import manifest_of
from weighbridge.intake.resolve import resolve_model
from weighbridge.judges.base import Judge
from weighbridge.judges.metrics import load_validation_set, validate_judge
from weighbridge.judges.registry import DEFAULT_JUDGES, JUDGES, get_judge
from weighbridge.report import JudgeInfo, SuiteResultInput, build_report, write_reports
from weighbridge.runner.engine import ProgressSink, RunPlan, execute
from weighbridge.services.custody import CustodyVault, has_custody
from weighbridge.services.intake import open_vault, take_in
from weighbridge.store.db import Store
from weighbridge.store.schema import RunRow, SubmissionRow
from weighbridge.suites.hazards import load_hazard_suite
from weighbridge.targets.base import Target

SUITES: dict[str, Callable[[], Suite]] = {"hazards": load_hazard_suite}


@dataclass(frozen=True)
class EvalOptions:
    suite: str = "hazards"
    limit: int | None = None
    params: GenerationParams = field(default_factory=GenerationParams)
    n_threads: int | None = None


@dataclass(frozen=True)
class Evaluation:
    run: RunRow
    stats: RunStats


def load_suite(suite_id: str) -> Suite:
    try:
        return SUITES[suite_id]()
    except KeyError:
        raise WeighbridgeError(f"Unknown suite '{suite_id}'", f"Choose one of: {', '.join(sorted(SUITES))}") from None


def default_judges() -> list[Judge]:
    return [get_judge(name) for name in DEFAULT_JUDGES]


def judge_info(name: str, version: str) -> JudgeInfo:
    """A judge as recorded by a run, with its agreement on the held-out labelled split.

    Figures are measured now, on the installed judge; if its version differs from the one the run
    used, they would describe another judge, so none are given.
    """
    judge = JUDGES[name]() if name in JUDGES else None
    if judge is None or judge.version != version:
        return JudgeInfo(name, version, None)
    rows = load_validation_set(judge.validation_set, split="heldout")
    metrics = validate_judge(judge, rows, judge.positive_label)
    return JudgeInfo(name, version, {"set": judge.validation_set, "split": "heldout", **asdict(metrics)})


def open_target(model: ModelRef, n_threads: int | None = None) -> Target:
    if model.format == "endpoint":
        from weighbridge.targets.openai_compat import OpenAICompatTarget

        assert model.endpoint is not None
        return OpenAICompatTarget(model.endpoint)
    if model.format == "gguf":
        from weighbridge.targets.llamacpp import LlamaCppTarget

        assert model.path is not None
        return LlamaCppTarget(Path(model.path), n_threads=n_threads, seed=GenerationParams().seed)
    raise WeighbridgeError(f"Models in format '{model.format}' cannot be evaluated yet", "Convert the model to GGUF")


def recorded_model(row: SubmissionRow) -> ModelRef:
    """The model as the submission recorded it (name, format, manifest), without touching files."""
    files = tuple(ModelFile(**f) for f in json.loads(row.manifest_json))
    if row.endpoint_json:
        endpoint = EndpointSpec(**json.loads(row.endpoint_json))
        return ModelRef(name=row.name, format="endpoint", manifest=Manifest(files), endpoint=endpoint)
    return ModelRef(name=row.name, format=row.format, manifest=Manifest(files), path=row.source)  # type: ignore[arg-type]


def model_from_submission(row: SubmissionRow) -> ModelRef:
    """The recorded model at its source path, re-hashed to prove the files are unchanged."""
    model = recorded_model(row)
    if model.endpoint is not None:
        return model
    path = Path(row.source)
    if not path.exists():
        raise WeighbridgeError(
            f"The files of submission {row.id[:8]} are gone: {path}", "Restore them or submit the model again"
        )
    current = manifest_of(path)
    if current.digest != row.digest:
        raise WeighbridgeError(
            f"{path} changed since it was submitted (digest {current.digest[:12]} ≠ {row.digest[:12]})",
            "Submit the new files as a new submission",
        )
    return model


@contextmanager
def evaluation_copy(
    store: Store, row: SubmissionRow, vault_factory: Callable[[], CustodyVault], purpose: str
) -> Iterator[ModelRef]:
    """The submitted model as a target can open it: decrypted from custody into a private temporary
    directory that is removed afterwards, or (for endpoints and pre-custody submissions) from its
    source, re-hashed to prove it is unchanged."""
    if row.endpoint_json or not has_custody(store, row.id):
        yield model_from_submission(row)
        return
    model = recorded_model(row)
    vault = vault_factory()
    with vault.materialize(row.id, purpose=purpose, actor=vault.actor) as folder:
        single = model.format in ("gguf", "safetensors", "pickle") and len(model.manifest.files) == 1
        path = folder / model.manifest.files[0].path if single else folder
        yield replace(model, path=str(path))


def run_key(model: ModelRef, suite: Suite, params: GenerationParams, target: Target, judges: Sequence[Judge]) -> str:
    """What makes two runs the same work: an unfinished run with this key is resumed."""
    return sha256_text(
        canonical_json(
            {
                "model": model.digest,
                "suite": [suite.id, suite.version, suite.content_hash],
                "params": asdict(params),
                "target": target.describe(),
                "judges": [[j.name, j.version] for j in judges],
            }
        )
    )


def evaluate(
    store: Store,
    submission: SubmissionRow,
    model: ModelRef,
    target: Target,
    options: EvalOptions,
    progress: ProgressSink | None = None,
    judges: Sequence[Judge] | None = None,
) -> Evaluation:
    suite = load_suite(options.suite).limited(options.limit)
    judges = list(judges) if judges is not None else default_judges()
    key = run_key(model, suite, options.params, target, judges)
    run = store.unfinished_run(key)
    if run is None:
        run = store.add_run(
            RunRow(
                id=str(uuid.uuid4()),
                submission_id=submission.id,
                run_key=key,
                suite_id=suite.id,
                suite_version=suite.version,
                suite_hash=suite.content_hash,
                item_limit=options.limit,
                total_items=len(suite.items),
                params_json=canonical_json(asdict(options.params)),
                target_json=canonical_json(target.describe()),
                judges_json=canonical_json([[j.name, j.version] for j in judges]),
            )
        )
    plan = RunPlan(run.id, model.digest, suite.items, options.params, description=f"{suite.id} · {model.name}")
    stats = execute(store, plan, target, judges, progress)
    if store.count_samples(run.id) == len(suite.items):
        store.finish_run(run.id)
    return Evaluation(run=store.get_run(run.id), stats=stats)


def report_for_run(store: Store, run: RunRow, model: ModelRef, last: RunStats | None = None) -> dict[str, Any]:
    """Build report.json's content from what the journal holds (never from in-memory state)."""
    suite = load_suite(run.suite_id).limited(run.item_limit)
    if suite.content_hash != run.suite_hash:
        raise WeighbridgeError(
            f"Run {run.id[:8]} used suite {run.suite_id} {run.suite_version} ({run.suite_hash[:12]}), "
            f"which differs from the installed one ({suite.content_hash[:12]})",
            "Install the weighbridge version that made the run, or evaluate again",
        )
    samples = store.samples(run.id)
    judges = json.loads(run.judges_json)
    primary = judges[0][0]
    labelled = []
    for s in samples:
        verdict = next((j for j in s.judgements if j.judge == primary), None)
        if verdict is None:
            raise WeighbridgeError(
                f"Sample {s.item_id} of run {run.id[:8]} has no {primary} judgement", "Evaluate again"
            )
        labelled.append((s.category, verdict.unsafe))
    categories, overall = per_category(suite.categories, labelled)
    # generated + cache_hits + resumed == samples: how the last invocation obtained each sample.
    # Without that invocation at hand (a later `weighbridge report`), split by cache origin only.
    stats = RunStats(
        seconds=run.seconds,
        samples=len(samples),
        tokens_generated=sum(s.completion_tokens for s in samples),
        generated=last.generated if last else sum(not s.cached for s in samples),
        cache_hits=last.cache_hits if last else sum(s.cached for s in samples),
        resumed=last.resumed if last else 0,
    )
    result = SuiteResultInput(
        suite_id=suite.id,
        version=suite.version,
        title=suite.title,
        content_hash=suite.content_hash,
        categories=tuple(categories),
        overall=overall,
    )
    extra = {
        "findings": [asdict(f) for f in store.findings(run.submission_id)],
        "run": {
            "id": run.id,
            "status": run.status,
            "item_limit": run.item_limit,
            "params": json.loads(run.params_json),
            "target": json.loads(run.target_json),
        },
    }
    infos = [judge_info(name, version) for name, version in judges]
    return build_report(model, {suite.id: result}, infos, stats, extra=extra)


@dataclass(frozen=True)
class ReviewOutcome:
    json_path: Path
    html_path: Path
    evaluation: Evaluation
    submission: SubmissionRow


def review(
    store_factory: Callable[[], Store],
    model_arg: str | None,
    out_dir: Path | None,
    options: EvalOptions,
    progress: ProgressSink | None = None,
    notice: Callable[[str], None] = lambda _: None,
) -> ReviewOutcome:
    """Submit (or reuse the submission of the same digest), evaluate, write both reports.

    Without `out_dir` the reports go to ./reports/NAME-DIGEST8/.
    """
    model = resolve_model(model_arg)
    load_suite(options.suite)  # unknown suite: fail before anything is loaded or stored
    target = open_target(model, options.n_threads)
    try:
        store = store_factory()
        try:
            submission = store.latest_submission(model.digest)
            if submission is None:
                submission = take_in(store, model, vault=open_vault(store, notice)).submission
            evaluation = evaluate(store, submission, model, target, options, progress)
            if evaluation.run.status != "finished":
                raise WeighbridgeError("The run did not finish", "Rerun the same command to resume it")
            report = report_for_run(store, evaluation.run, model, evaluation.stats)
        finally:
            store.close()
    finally:
        target.close()
    out_dir = out_dir or Path("reports") / f"{model.name}-{model.digest[:8]}"
    json_path, html_path = write_reports(report, out_dir)
    return ReviewOutcome(json_path, html_path, evaluation, submission)
