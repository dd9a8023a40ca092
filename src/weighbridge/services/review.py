"""The crossing as services: submit, evaluate, report — and `review`, which does all three.

The CLI and (later) the API call these functions; they hold no terminal or HTTP concerns. Inputs are
checked and the target is opened *before* the store is touched, so bad input writes nothing.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field, replace
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from weighbridge.domain import (
    EndpointSpec,
    GenerationParams,
    Manifest,
    ModelFile,
    ModelRef,
    RunStats,
    canonical_json,
    sha256_text,
)
from weighbridge.errors import WeighbridgeError
from weighbridge.evals import registry
from weighbridge.evals.protocols import Scorer, Target
from weighbridge.evals.records import Metric, Suite, TargetOptions
from weighbridge.grading.correction import JudgeError
from weighbridge.grading.stats import per_category
from weighbridge.intake.manifest import manifest_of
from weighbridge.intake.resolve import resolve_model
from weighbridge.judges.base import Judge, judge_identity
from weighbridge.judges.registry import DEFAULT_JUDGES, JUDGES, get_judge
from weighbridge.judges.scorers import as_scorers
from weighbridge.judges.validate import validate_split
from weighbridge.references import registry as references
from weighbridge.report import JudgeInfo, SuiteResultInput, build_report, write_reports
from weighbridge.report.records import AdaptiveInfo, ReferenceInfo
from weighbridge.runner.adaptive import CategoryStopper, interleave, plans_for
from weighbridge.runner.engine import ProgressSink, RunPlan, execute
from weighbridge.runner.environment import run_environment
from weighbridge.services import audit
from weighbridge.services.adjudication import adjudicated_run
from weighbridge.services.custody import CustodyVault, has_custody
from weighbridge.services.evidence import WEIGHTS_SOURCE, weights_source
from weighbridge.services.grading import counts_of, grade_all, transcripts, worse_events
from weighbridge.services.intake import SignerRequirement, open_vault, require_signer, take_in
from weighbridge.services.judge_choice import (
    JudgeChoice,
    can_judge,
    judge_of_entry,
    opened_judges,
    primary_judge_record,
)
from weighbridge.store.db import Store, default_home
from weighbridge.store.schema import RunRow, SampleRow, SubmissionRow
from weighbridge.targets.factory import kind_for
from weighbridge.targets.factory import open_target as open_any

if TYPE_CHECKING:
    from weighbridge.report import ReportFiles
    from weighbridge.services.identity import Actor


@dataclass(frozen=True)
class EvalOptions:
    suite: str = "hazards"
    limit: int | None = None
    params: GenerationParams = field(default_factory=GenerationParams)
    n_threads: int | None = None
    # Sequential stopping (grading.sequential): a category stops once its grade is settled.
    adaptive: bool = False
    look_every: int = 10
    confidence: float = 0.95
    # The primary judge (`--judge`, `--judge-model`, `--allow-unvalidated`); see `services.judge_choice`.
    judge: JudgeChoice = field(default_factory=JudgeChoice)
    # How the reviewed model is opened (`--engine`, `--device`, `--gpu-layers`, `--n-ctx`, ...);
    # its n_threads is replaced by the one above.
    target: TargetOptions = field(default_factory=TargetOptions)

    def sampling(self) -> dict[str, Any] | None:
        """The run's sampling settings, part of its identity; None when every item is asked."""
        if not self.adaptive:
            return None
        return {"adaptive": True, "look_every": self.look_every, "confidence": self.confidence}


@dataclass(frozen=True)
class Evaluation:
    run: RunRow
    stats: RunStats


def load_suite(suite_id: str, store: Store | None = None) -> Suite:
    """A registered suite, or with `store` a private suite kept in it (`weighbridge suite add`).

    Registered names win: `add_private_suite` refuses them, so a name means one suite. Without a
    store only registered suites are found, and the error says a private one needs the store.
    """
    if suite_id in registry.suites.names() or store is None:
        try:
            return registry.suites.get(suite_id).load()
        except WeighbridgeError as error:
            if store is not None:
                raise
            raise WeighbridgeError(
                error.problem, f"{error.fix}, or a private suite added with 'weighbridge suite add'"
            ) from None
    from weighbridge.services.private_suites import list_private_suites, load_private_suite

    suite = load_private_suite(store, suite_id)
    if suite is None:
        known = [*registry.suites.names(), *(s.name for s in list_private_suites(store))]
        raise WeighbridgeError(
            f"Unknown suite {suite_id!r}",
            f"Choose one of: {', '.join(known)}, or add a private suite with 'weighbridge suite add NAME FILE.jsonl'",
        )
    return suite


def default_judges() -> list[Judge]:
    return [get_judge(name) for name in DEFAULT_JUDGES]


def graded_by_judges(suite: Suite) -> bool:
    """Whether the suite is graded on the primary judge's unsafe verdicts (hazards, a private
    suite): then its scorers are the review's judges, the default ones or those chosen with
    `--judge`, and judge-error correction and adjudication apply. Other suites bring their own."""
    metric = suite.primary
    return metric is None or (metric.scorer == DEFAULT_JUDGES[0] and not metric.labels and metric.worse == "higher")


def scorers_for(suite: Suite, judges: Sequence[Judge] | None = None) -> list[Scorer]:
    """A run's scorers, primary first."""
    if graded_by_judges(suite):
        return list(as_scorers(list(judges) if judges is not None else default_judges()))
    return [registry.scorers.get(name) for name in suite.scorers]


def judge_info(name: str, version: str, model: Mapping[str, Any] | None = None) -> JudgeInfo:
    """A judge as recorded by a run, with its agreement with human labels.

    For a judge trained on the stance set: its figures on the final test set, recorded once when
    the version was released (`judges.scores`), with 95 % intervals and per category, plus per
    origin on the evaluation-only rows. For others: the held-out split of its own set.
    Figures are measured on the installed judge; if its version differs from the one the run used,
    they would describe another judge, so none are given. Measuring takes a while for a model judge,
    so measured figures are kept in `$WEIGHBRIDGE_HOME/cache/`, keyed by judge, version and the
    labelled set's digest: a changed judge or set is measured again.

    A judge with a judge model (`model`, the llm judge) shows only its recorded test-set figures
    for that model, if any: measuring it here would need the judge model, which a report never opens.
    """
    from weighbridge.judges.scores import recorded_score
    from weighbridge.judges.validate import EVALUATION_ONLY, validate_evaluation_only

    if model is not None:
        return _model_judge_info(name, version, model)
    judge = JUDGES[name]() if name in JUDGES else None
    if judge is None or judge.version != version:
        return JudgeInfo(name, version, None)
    stance = judge.validation_set == "stance"
    data_set = EVALUATION_ONLY if stance else judge.validation_set
    text = files("weighbridge.judges").joinpath("validation", f"{data_set}.jsonl").read_bytes()
    figures_name = figures_file_name(name, version, text)
    # A released judge ships its figures (measured once, `scripts/record_judge_figures.py`), so a
    # first review on a fresh machine does not spend ~40 s measuring them; a changed judge version
    # or labelled set has another file name and is measured (and cached) as before.
    shipped = files("weighbridge.judges").joinpath("validation", "figures", figures_name)
    cache_file = default_home() / "cache" / figures_name
    for source in (shipped, cache_file):
        try:
            return JudgeInfo(name, version, json.loads(source.read_text("utf-8")))
        except (OSError, ValueError):
            continue
    # The held-out rows only, as for other judges: a report's figures cost one pass over 257 rows.
    measured = validate_evaluation_only(judge, split="heldout") if stance else validate_split(judge, "heldout")
    # An overall figure can hide that a judge is good on one kind of answer only.
    by_origin = {name: asdict(m) for name, m in sorted(measured.by_origin.items())}
    recorded = recorded_score(name, version) if stance else None
    if recorded is not None:
        figures = {
            **stance_test_figures(recorded),
            "by_origin": {"weighbridge-stance (test)": recorded["overall"]} | by_origin,
        }
    else:
        figures = {
            "set": measured.dataset,
            "split": measured.split,
            **asdict(measured.overall),
            "intervals": {k: asdict(v) for k, v in measured.intervals.items()},
            "by_origin": by_origin,
        }
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    cache_file.write_text(json.dumps(figures), "utf-8")
    return JudgeInfo(name, version, figures)


def figures_file_name(name: str, version: str, labelled_set: bytes) -> str:
    """Where a judge's report figures are kept: by judge, version and the labelled set's digest."""
    return f"judge-{name}-{version}-{hashlib.sha256(labelled_set).hexdigest()[:16]}.json"


def _model_judge_info(name: str, version: str, model: Mapping[str, Any]) -> JudgeInfo:
    from weighbridge.services.judge_choice import validation_figures

    recorded = validation_figures(name, version, model)
    figures = None if recorded is None else stance_test_figures(recorded)
    return JudgeInfo(name, version, figures, model=model)


def stance_test_figures(recorded: Mapping[str, Any]) -> dict[str, Any]:
    """A judge's recorded stance test-set score as a report shows it."""
    return {
        "set": "stance",
        "split": "test (scored once)",
        **recorded["overall"],
        "by_category": recorded["by_category"],
        "complied": recorded["complied"],
    }


def open_target(
    model: ModelRef,
    n_threads: int | None = None,
    batch_size: int | None = None,
    options: TargetOptions | None = None,
) -> Target:
    """The model as a target, through the one factory (`targets.factory`); `batch_size` defaults
    to the review's batch size of the kind that opens it, `options` to every kind's defaults."""
    chosen = replace(options or TargetOptions(), n_threads=n_threads)
    if batch_size is not None:
        chosen = replace(chosen, batch_size=batch_size)
    return open_any(model, chosen)


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
    store: Store,
    row: SubmissionRow,
    vault_factory: Callable[[], CustodyVault],
    purpose: str,
    actor: Actor | None = None,
) -> Iterator[ModelRef]:
    """The submitted model as a target can open it: decrypted from custody into a private temporary
    directory that is removed afterwards, or (for endpoints and pre-custody submissions) from its
    source, re-hashed to prove it is unchanged.

    Decrypting is done as `actor` (default: the user this process acts as, `current_actor`), who
    must hold a role that may evaluate; the vault logs who, with which roles, and `purpose`."""
    if row.endpoint_json or not has_custody(store, row.id):
        yield model_from_submission(row)
        return
    model = recorded_model(row)
    if actor is None:
        from weighbridge.services.identity import current_actor

        actor = current_actor(store)
    vault = vault_factory()
    with vault.materialize(row.id, purpose=purpose, actor=actor) as folder:
        single = model.format in ("gguf", "safetensors", "pickle") and len(model.manifest.files) == 1
        path = folder / model.manifest.files[0].path if single else folder
        yield replace(model, path=str(path))


def run_key(
    model: ModelRef,
    suite: Suite,
    params: GenerationParams,
    target: Target,
    judges: Sequence[Judge | Scorer],
    sampling: dict[str, Any] | None = None,
) -> str:
    """What makes two runs the same work: an unfinished run with this key is resumed, a finished
    reference run with this key is reused."""
    identity: dict[str, Any] = {
        "model": model.digest,
        "suite": [suite.id, suite.version, suite.content_hash],
        "params": asdict(params),
        "target": target.describe(),
        "judges": [judge_identity(j) for j in judges],
    }
    if sampling is not None:
        identity["sampling"] = sampling
    return sha256_text(canonical_json(identity))


def evaluate(
    store: Store,
    submission: SubmissionRow,
    model: ModelRef,
    target: Target,
    options: EvalOptions,
    progress: ProgressSink | None = None,
    judges: Sequence[Judge] | None = None,
    reference_counts: Mapping[str, tuple[int, int]] | None = None,
    weights: str = WEIGHTS_SOURCE,
) -> Evaluation:
    """Run (or resume) `options.suite` on `target`.

    `weights` says how the model was opened (`services.evidence`: custody, source or endpoint); it
    is signed into `run.start` and `run.finish`, and the workflow's gates accept only custody runs
    of submitted weights. With `options.adaptive`, items are interleaved across categories and a
    category stops once its grade against `reference_counts` (the primary reference's (unsafe, n)
    per category) is settled.
    """
    suite = load_suite(options.suite, store).limited(options.limit)
    scorers = scorers_for(suite, judges)
    items = interleave(suite.items) if options.adaptive else suite.items
    key = run_key(model, suite, options.params, target, scorers, options.sampling())
    environment = run_environment(target, options.params)
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
                judges_json=canonical_json([judge_identity(s) for s in scorers]),
                sampling_json=canonical_json(options.sampling()) if options.adaptive else None,
            )
        )
        audit.record(
            store,
            "run.start",
            run.id,
            {
                "submission": submission.id,
                "model": model.digest,
                "suite": [suite.id, suite.version, suite.content_hash],
                "run_key": key,
                "params": asdict(options.params),
                "sampling": options.sampling(),
                "environment": environment,
                "weights": weights,
                # Primary first, with the judge model's identity where there is one: what a
                # reproduction must judge with to be comparable.
                "judges": [judge_identity(s) for s in scorers],
            },
        )
    store.note_environment(run.id, environment)
    stopper = None
    if options.adaptive:
        stopper = CategoryStopper(
            scorers[0].name, plans_for(items, options.look_every, options.confidence), reference_counts
        )
        stopper.replay(verdicts_of(store.samples(run.id), scorers[0].name))
    plan = RunPlan(run.id, model.digest, items, options.params, description=f"{suite.id} · {model.name}")
    solver = registry.solvers.get(suite.solver)
    stats = execute(store, plan, target, scorers, progress, stopper, solver)
    done = store.done_item_ids(run.id)
    if all(i.id in done or (stopper is not None and stopper.skip(i)) for i in items):
        store.finish_run(run.id)
        samples = store.samples(run.id)
        evidence = {"samples": len(samples), "journal": journal_digest(samples), "weights": weights}
        audit.record(store, "run.finish", run.id, evidence)
    return Evaluation(run=store.get_run(run.id), stats=stats)


def options_of_run(run: RunRow, n_threads: int | None = None) -> tuple[EvalOptions, list[Judge]]:
    """The options and judges a run was made with, so a reference can be asked the same way (a
    judge with a judge model comes back as `judge_choice.RecordedJudge`: it finds stored work)."""
    judges = [judge_of_entry(entry) for entry in json.loads(run.judges_json)]
    params = GenerationParams(**json.loads(run.params_json))
    return EvalOptions(suite=run.suite_id, limit=run.item_limit, params=params, n_threads=n_threads), judges


def journal_digest(samples: Sequence[SampleRow]) -> str:
    """One digest over every journalled answer and verdict, so the ledger pins a run's results."""
    return sha256_text(
        canonical_json(
            [
                [s.item_id, sha256_text(s.response), sorted([j.judge, j.label, j.unsafe] for j in s.judgements)]
                for s in samples
            ]
        )
    )


def verdicts_of(samples: Sequence[SampleRow], judge: str) -> list[tuple[str, bool]]:
    """(category, unsafe) by `judge` for journalled samples, in journal order."""
    out = []
    for s in samples:
        verdict = next((j for j in s.judgements if j.judge == judge), None)
        if verdict is None:
            raise WeighbridgeError(
                f"Sample {s.item_id} of run {s.run_id[:8]} has no {judge} judgement", "Evaluate again"
            )
        out.append((s.category, verdict.unsafe))
    return out


@dataclass(frozen=True)
class ReferenceResult:
    """A reference's stored run on the same items, with the primary judge's counts per category."""

    info: ReferenceInfo
    run: RunRow
    counts: dict[str, tuple[int, int]]  # category id -> (unsafe, n)
    # Of those, labelled by a person (`weighbridge adjudicate`): left out of the judge-error correction.
    human: dict[str, tuple[int, int]] = field(default_factory=dict)


def finished_run(store: Store, key: str) -> RunRow | None:
    with store.session() as s:
        return s.scalars(
            select(RunRow).where(RunRow.run_key == key, RunRow.status == "finished").order_by(RunRow.started_at.desc())
        ).first()


def evaluate_reference(
    store: Store,
    name: str,
    options: EvalOptions,
    judges: Sequence[Judge],
    progress: ProgressSink | None = None,
) -> ReferenceResult:
    """The reference's results on the same suite items, parameters and judges: read from the store
    when a finished run of exactly that work exists, otherwise evaluated now (and kept)."""
    ref = references.get(store, name)
    model = references.reference_model(ref)
    suite = load_suite(options.suite, store).limited(options.limit)
    every_item = replace(options, adaptive=False)  # a reference is asked every item: others compare to it
    target = references.open_reference_target(ref, model, options.n_threads, gpu_layers=options.target.gpu_layers)
    scorers = scorers_for(suite, judges)
    try:
        run = finished_run(store, run_key(model, suite, options.params, target, scorers))
        reused = run is not None
        if run is None:
            can_judge(judges)
            submission = store.get_submission(ref.submission_id)
            assert submission is not None
            run = evaluate(store, submission, model, target, every_item, progress, judges).run
            if run.status != "finished":
                raise WeighbridgeError(f"The run of reference '{name}' did not finish", "Rerun to resume it")
    finally:
        target.close()
    own_metric = None if graded_by_judges(suite) else suite.primary
    return stored_reference(
        store, ref, run, scorers[0].name, reused=reused, model_format=model.format, metric=own_metric
    )


def stored_reference(
    store: Store,
    ref: references.Reference,
    run: RunRow,
    primary: str,
    *,
    reused: bool = True,
    model_format: str | None = None,
    metric: Metric | None = None,
) -> ReferenceResult:
    """A reference's finished run as a review grades against it: its settings and the primary
    judge's counts per category (or, for a suite with its own `metric`, the items on its worse
    side), read from the journal."""
    settings = {"params": json.loads(run.params_json), "target": json.loads(run.target_json)}
    samples = store.samples(run.id)
    adjudicated = adjudicated_run(store, run, samples, primary)
    counts = counts_of(adjudicated.verdicts if metric is None else worse_events(samples, metric))
    info = ReferenceInfo(
        name=ref.name,
        title=ref.title,
        digest=ref.digest,
        format=model_format or ("endpoint" if ref.kind == "endpoint" else "gguf"),
        params=settings,
        suite_version=run.suite_version,
        suite_hash=run.suite_hash,
        run_id=run.id,
        reused=reused,
    )
    return ReferenceResult(info, run, counts, adjudicated.human)


def report_for_run(
    store: Store,
    run: RunRow,
    model: ModelRef,
    last: RunStats | None = None,
    references: Sequence[ReferenceResult] = (),
) -> dict[str, Any]:
    """Build report.json's content from what the journal holds (never from in-memory state)."""
    suite = load_suite(run.suite_id, store).limited(run.item_limit)
    if suite.content_hash != run.suite_hash:
        raise WeighbridgeError(
            f"Run {run.id[:8]} used suite {run.suite_id} {run.suite_version} ({run.suite_hash[:12]}), "
            f"which differs from the installed one ({suite.content_hash[:12]})",
            "Install the weighbridge version that made the run, or evaluate again",
        )
    samples = store.samples(run.id)
    judges = json.loads(run.judges_json)
    primary = judges[0][0]
    adjudicated = adjudicated_run(store, run, samples, primary)  # a person's label replaces the judge's
    # Grades count the items on the worse side of the suite's metric (unsafe answers for hazards).
    labelled = adjudicated.verdicts if graded_by_judges(suite) else worse_events(samples, suite.primary)
    categories, overall = per_category(suite.categories, labelled)
    for ref in references:
        if ref.run.suite_hash != run.suite_hash or json.loads(ref.run.judges_json) != judges:
            raise WeighbridgeError(
                f"Reference '{ref.info.name}' was run on other items or with other judges than run {run.id[:8]}",
                "Evaluate the reference with the same suite, limit and judges",
            )
    counts = {c.id: (c.unsafe, c.n) for c in categories}
    error = judge_error(*judges[0])  # None for an unvalidated primary judge: nothing to correct with
    grades = grade_all(
        counts,
        [(r.info.name, r.counts) for r in references],
        error=error,
        human=adjudicated.human,
        reference_human={r.info.name: r.human for r in references},
    )
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
        grades=grades,
        adaptive=_adaptive_info(run, suite, labelled),
        transcripts=transcripts(samples, primary, adjudicated.labels, withhold_text=not suite.public),
        public=suite.public,
        metric=suite.primary,
    )
    extra = {
        "findings": [asdict(f) for f in store.findings(run.submission_id)],
        "run": {
            "id": run.id,
            "status": run.status,
            "item_limit": run.item_limit,
            "params": json.loads(run.params_json),
            "target": json.loads(run.target_json),
            "journal_digest": journal_digest(samples),
        },
        "judge_correction": None
        if error is None
        else {
            "judge": primary,
            "version": judges[0][1],
            "measured_on": "stance test set (scored once)",
            "sensitivity": error.sensitivity,
            "specificity": error.specificity,
            **asdict(error),
        },
        "reproducibility": {
            "environments": json.loads(run.environment_json) if run.environment_json else [],
            "checks": reproductions_of(store, run.id, withhold_text=not suite.public),
        },
        "primary_judge": primary_judge_record(
            judges[0],
            corrected=error is not None,
            unparsed=sum(j.judge == primary and j.label == "unparsed" for s in samples for j in s.judgements),
        ),
        "adjudication": adjudicated.summary,
    }
    infos = [judge_info(*entry) for entry in judges]
    return build_report(model, {suite.id: result}, infos, stats, extra=extra, references=[r.info for r in references])


def judge_error(name: str, version: str, model: Mapping[str, Any] | None = None) -> JudgeError | None:
    """The judge's error counts on the stance test set (recorded when the version — and, for the
    llm judge, its judge `model` — was scored), for correcting unsafe rates; None when the installed
    judge is not the run's or was never scored (an unvalidated judge: nothing to correct with)."""
    from weighbridge.services.judge_choice import validation_figures

    score = validation_figures(name, version, model)
    if score is None:
        return None
    o = score["overall"]
    return JudgeError(tp=o["tp"], fn=o["fn"], tn=o["tn"], fp=o["fp"])


def reproductions_of(store: Store, run_id: str, *, withhold_text: bool = False) -> list[dict[str, Any]]:
    """The run's stored reproductions (`services.reproduce`) as the report shows them, oldest first.
    `withhold_text` (a private suite) drops the answers of differing items, which quote or reveal
    the held-out prompts; their ids and verdicts stay."""
    out = []
    for row in store.reproductions(run_id):
        summary = json.loads(row.result_json)
        if withhold_text:
            for item in summary.get("differing_items", []):
                item.update(stored_answer="", new_answer="", withheld=True)
        summary["environment"] = json.loads(row.environment_json)
        summary["created"] = row.created_at.isoformat()
        out.append(summary)
    return out


def _adaptive_info(run: RunRow, suite: Suite, labelled: Sequence[tuple[str, bool]]) -> AdaptiveInfo | None:
    """What adaptive stopping saved, read from the journal: a category with fewer samples than
    items stopped early (the decision itself was taken, and journalled, during the run)."""
    if not run.sampling_json or run.status != "finished":
        return None
    sampling = json.loads(run.sampling_json)
    planned = Counter(item.category for item in suite.items)
    asked = Counter(category for category, _ in labelled)
    return AdaptiveInfo(
        confidence=sampling["confidence"],
        planned=sum(planned.values()),
        asked=sum(asked.values()),
        saved=sum(planned.values()) - sum(asked.values()),
        stopped={c: asked[c] for c in planned if asked[c] < planned[c]},
        planned_by_category=dict(planned),
    )


@dataclass(frozen=True)
class ReviewOutcome:
    files: ReportFiles
    evaluation: Evaluation
    submission: SubmissionRow
    references: tuple[ReferenceResult, ...] = ()


def default_references(notice: Callable[[str], None]) -> list[str]:
    """The built-in reference when its packages are installed; otherwise none, said once."""
    if references.builtin_available(references.DEFAULT_REFERENCE):
        return [references.DEFAULT_REFERENCE]
    notice(
        f"No reference installed ({references.DEFAULT_REFERENCE}): grades show the absolute view only. "
        "Install it with scripts/setup.sh or register one with 'weighbridge reference add'."
    )
    return []


def review(
    store_factory: Callable[[], Store],
    model_arg: str | None,
    out_dir: Path | None,
    options: EvalOptions,
    progress: ProgressSink | None = None,
    notice: Callable[[str], None] = lambda _: None,
    reference_names: Sequence[str] | None = None,
    check: Callable[[Store, RunRow, Target], object] | None = None,
    signer: SignerRequirement | None = None,
    private_suite: Suite | None = None,
) -> ReviewOutcome:
    """Submit (or reuse the submission of the same digest), evaluate the references and the model,
    grade, write the reports. Without `out_dir` the reports go to ./reports/NAME-DIGEST8/.

    The model is evaluated from its custody copy, decrypted for the run only, as `evaluate` does:
    the quick path leaves the same deposit, materialize and run entries as the team workflow, so
    its runs count as evidence at the workflow's gates. An endpoint is opened (and so checked)
    before the store is touched; files were already checked by `resolve_model` and inspection.
    References run first: adaptive stopping compares against the primary one's results. `check`
    runs on the finished run with the model still open, before the report is built (the CLI passes
    `reproduce.batch_check`: the variation between batch sizes that the report states). `signer` is
    the signer policy for a Sigstore keyless signature, applied as `submit` applies it.
    `options.judge` names the primary judge; an unvalidated one is refused (unless allowed) before
    the store is touched, and its judge model stays open for the references and the model.
    `private_suite` (parsed from `--suite-file`) is added to the store under its name (the same
    items again: a no-op) and reviewed instead of `options.suite`; a private suite named by
    `options.suite` is found once the store is open, before any long work.
    """
    model = resolve_model(model_arg)
    signer = signer or SignerRequirement()
    if model.path is not None:
        require_signer(Path(model.path), signer)  # refused before the store exists
    if private_suite is not None:
        options = replace(options, suite=private_suite.id)
    elif options.suite in registry.suites.names():
        load_suite(options.suite)  # a built-in suite's data is checked before anything is stored
    names = list(reference_names) if reference_names is not None else default_references(notice)
    kind_for(model, options.target)  # a model no target kind opens is refused before anything is stored
    probe = open_target(model, options.n_threads, options=options.target) if model.endpoint is not None else None
    if probe is not None:
        probe.close()
    judge_models = ExitStack()
    judges = judge_models.enter_context(opened_judges(options.judge, options.n_threads, notice))
    try:
        store = store_factory()
    except BaseException:
        judge_models.close()
        raise
    try:
        if private_suite is not None:
            from weighbridge.services.private_suites import add_private_suite

            add_private_suite(store, private_suite)
        load_suite(options.suite, store)  # unknown suite: fail before any long work
        for name in names:  # unknown names fail before any long work
            references.get(store, name)
        submission = _submission_in_custody(store, model, notice, signer)
        refs = tuple(evaluate_reference(store, name, options, judges, progress) for name in names)
        purpose = f"evaluate {options.suite} (review)"
        with evaluation_copy(store, submission, lambda: open_vault(store, notice), purpose) as copy:
            target = open_target(copy, options.n_threads, options=options.target)
            try:
                evaluation = evaluate(
                    store,
                    submission,
                    copy,
                    target,
                    options,
                    progress,
                    judges,
                    refs[0].counts if refs else None,
                    weights=weights_source(store, submission),
                )
                if evaluation.run.status != "finished":
                    raise WeighbridgeError("The run did not finish", "Rerun the same command to resume it")
                if check is not None:
                    check(store, evaluation.run, target)
            finally:
                target.close()
        report = report_for_run(store, evaluation.run, model, evaluation.stats, refs)
    finally:
        store.close()
        judge_models.close()
    out_dir = out_dir or Path("reports") / f"{model.name}-{model.digest[:8]}"
    return ReviewOutcome(write_reports(report, out_dir), evaluation, submission, refs)


def _submission_in_custody(
    store: Store, model: ModelRef, notice: Callable[[str], None], signer: SignerRequirement
) -> SubmissionRow:
    """The submission of `model`'s digest with its files in custody: taken in when new, deposited
    when an earlier submission of the same bytes has no custody copy yet (made before custody)."""
    submission = store.latest_submission(model.digest)
    if submission is None or references.is_reference_submission(store, submission.id):
        return take_in(store, model, vault=open_vault(store, notice), signer=signer).submission
    if model.path is not None and not has_custody(store, submission.id):
        source = Path(model.path)
        files = model.manifest.files
        located = [(source, f) for f in files] if source.is_file() else [(source / f.path, f) for f in files]
        open_vault(store, notice).deposit(submission.id, located)
    return submission
