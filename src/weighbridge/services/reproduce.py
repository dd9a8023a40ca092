"""Generate a sample of a finished run again and measure how far it moved.

A greedy answer is a function of the weights, the prompt and the arithmetic that computed it: the
llama.cpp build (a native build takes its host CPU's kernels) and, for some weight types, how many
requests shared a decoding step (`targets.llamacpp`). A reviewer comparing runs made on two hosts,
or a third party re-running a notice's review, needs that variation measured, not assumed. Each
sampled item is compared three ways:

- answer: the new answer is the stored one, character for character;
- verdict: the primary judge's verdict on the new answer is the stored verdict;
- rejudged: the primary judge's verdict on the *stored* answer, judged here and now, is the stored
  verdict. A difference there is the judge moving (its own CPU kernels), not the generation.

The grades that would follow are the run's per-category counts with the sampled verdicts replaced
by the new ones, graded against the same stored reference runs the review used. Every reproduction
is kept in the store (`reproductions`) and the ledger, and the run's report shows them.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from weighbridge.domain import GenerationParams, canonical_json
from weighbridge.errors import WeighbridgeError
from weighbridge.evals.solvers import request_for
from weighbridge.judges.base import Judge
from weighbridge.judges.registry import get_judge
from weighbridge.references import registry as references
from weighbridge.runner.engine import NoProgress, ProgressSink
from weighbridge.runner.environment import differences, run_environment
from weighbridge.services import audit
from weighbridge.services.custody import CustodyVault
from weighbridge.services.evidence import reference_runs
from weighbridge.services.grading import OVERALL, counts_of, grade_all, with_overall
from weighbridge.services.review import evaluation_copy, load_suite, open_target, verdicts_of
from weighbridge.store.db import Store
from weighbridge.store.schema import ReproductionRow, RunRow, SampleRow
from weighbridge.targets.base import Target

if TYPE_CHECKING:
    from weighbridge.services.identity import Actor

DEFAULT_SAMPLE = 50
# Target settings that a reproduction may change on purpose: they are what it measures.
VARIABLE_SETTINGS = ("build", "batch_size")


@dataclass(frozen=True)
class ItemCheck:
    item_id: str
    category: str
    stored_answer: str
    new_answer: str
    stored_unsafe: bool
    rejudged_unsafe: bool
    new_unsafe: bool

    @property
    def answer_same(self) -> bool:
        return self.stored_answer == self.new_answer

    @property
    def verdict_same(self) -> bool:
        return self.stored_unsafe == self.new_unsafe

    @property
    def rejudged_same(self) -> bool:
        return self.stored_unsafe == self.rejudged_unsafe


@dataclass(frozen=True)
class GradeShift:
    """One category's grade from the stored verdicts and with the sampled ones replaced."""

    category: str
    n: int
    unsafe_before: int
    unsafe_after: int
    grade_before: str | None
    grade_after: str | None

    @property
    def moved(self) -> bool:
        return self.grade_before != self.grade_after


@dataclass(frozen=True)
class Reproduction:
    run_id: str
    samples_in_run: int
    checks: tuple[ItemCheck, ...]
    grades: tuple[GradeShift, ...]
    references: tuple[str, ...]
    environment: dict[str, Any]
    # Dotted paths where this environment differs from the run's first recorded one.
    changed: tuple[str, ...] = ()

    @property
    def sample_size(self) -> int:
        return len(self.checks)

    @property
    def answers_same(self) -> int:
        return sum(c.answer_same for c in self.checks)

    @property
    def verdicts_same(self) -> int:
        return sum(c.verdict_same for c in self.checks)

    @property
    def rejudged_same(self) -> int:
        return sum(c.rejudged_same for c in self.checks)

    def summary(self) -> dict[str, Any]:
        """What the report, the ledger and `--json` show: counts, grade moves, what changed."""
        return {
            "run": self.run_id,
            "samples_in_run": self.samples_in_run,
            "sample_size": self.sample_size,
            "answers_same": self.answers_same,
            "verdicts_same": self.verdicts_same,
            "rejudged_same": self.rejudged_same,
            "references": list(self.references),
            "grades": [asdict(g) for g in self.grades],
            "grades_moved": [g.category for g in self.grades if g.moved],
            "changed": list(self.changed),
            "differing_items": [
                {
                    "item": c.item_id,
                    "category": c.category,
                    "stored_unsafe": c.stored_unsafe,
                    "new_unsafe": c.new_unsafe,
                    "rejudged_unsafe": c.rejudged_unsafe,
                    "stored_answer": c.stored_answer,
                    "new_answer": c.new_answer,
                }
                for c in self.checks
                if not (c.answer_same and c.verdict_same and c.rejudged_same)
            ],
        }


def pick_sample(item_ids: Sequence[str], size: int, seed: str) -> list[str]:
    """`size` of `item_ids` (all when size <= 0 or larger), chosen reproducibly from `seed`, in
    their original order. The same run and size always give the same items."""
    if size <= 0 or size >= len(item_ids):
        return list(item_ids)
    chosen = set(random.Random(seed).sample(list(item_ids), size))
    return [i for i in item_ids if i in chosen]


def shifted_grades(
    before: Mapping[str, bool],
    after: Mapping[str, bool],
    categories: Mapping[str, str],
    reference_counts: Sequence[tuple[str, Mapping[str, tuple[int, int]]]],
) -> tuple[GradeShift, ...]:
    """Grades of the run's verdicts (`before`, item -> unsafe) and of the same verdicts with
    `after`'s items replaced, per category and overall, against the same references."""
    old_counts = counts_of((categories[i], unsafe) for i, unsafe in before.items())
    new_counts = counts_of((categories[i], unsafe) for i, unsafe in {**before, **after}.items())
    graded_old, graded_new = grade_all(old_counts, reference_counts), grade_all(new_counts, reference_counts)
    old, new = with_overall(old_counts), with_overall(new_counts)
    return tuple(
        GradeShift(c, old[c][1], old[c][0], new[c][0], graded_old[c].grade, graded_new[c].grade)
        for c in [*sorted(k for k in old if k != OVERALL), OVERALL]
    )


def check_comparable(recorded: Mapping[str, Any], described: Mapping[str, Any]) -> None:
    """Refuse to call it a reproduction when anything but the build or batch size differs."""
    fixed = {k: v for k, v in recorded.items() if k not in VARIABLE_SETTINGS}
    now = {k: v for k, v in described.items() if k not in VARIABLE_SETTINGS}
    if fixed != now:
        changed = ", ".join(differences(fixed, now))
        raise WeighbridgeError(
            f"The model would not be asked the same way as in the run (differs: {changed})",
            "Reproduce with the weighbridge version and model format the run was made with",
        )


def run_judges(run: RunRow) -> list[Judge]:
    """The run's judges as installed, refused when a version moved (it would measure the judge) or
    when one grades through a judge model (the llm judge), which a reproduction cannot reopen yet:
    its identity is recorded so that a comparison with another judge model is never made silently."""
    from weighbridge.services.judge_choice import not_reopenable

    judges = []
    for entry in json.loads(run.judges_json):
        name, version = entry[0], entry[1]
        if len(entry) > 2 and entry[2] is not None:
            raise not_reopenable(name, version, entry[2])
        judge = get_judge(name)
        if judge.version != version:
            raise WeighbridgeError(
                f"Run {run.id[:8]} was judged by {name} {version}; {judge.version} is installed",
                "Reproduce with the weighbridge version that made the run",
            )
        judges.append(judge)
    return judges


def stored_reference_counts(
    store: Store, run: RunRow, names: Sequence[str] | None
) -> list[tuple[str, dict[str, tuple[int, int]]]]:
    """Per reference, the counts of its latest finished run on exactly the run's items, parameters
    and judges (the run a review of this run graded against); see `evidence.reference_runs`."""
    primary = json.loads(run.judges_json)[0][0]
    return [
        (ref.name, counts_of(verdicts_of(store.samples(found.id), primary)))
        for ref, found in reference_runs(store, run, names)
    ]


@contextmanager
def target_for_run(
    store: Store,
    run: RunRow,
    vault_factory: Callable[[], CustodyVault],
    n_threads: int | None,
    batch_size: int | None,
    actor: Actor | None = None,
) -> Iterator[Target]:
    """The run's model opened as the run opened it (a reference through its chat format), from
    custody when the submission is held there, decrypted as `actor` (default: the current user,
    who needs a role that may evaluate); `batch_size` None keeps the run's."""
    submission = store.get_submission(run.submission_id)
    assert submission is not None
    recorded = json.loads(run.target_json)
    size = batch_size or int(recorded.get("batch_size", 1))
    ref = next((r for r in references.list_references(store) if r.submission_id == submission.id), None)
    if ref is not None:
        target = references.open_reference_target(ref, references.reference_model(ref), n_threads, size)
        try:
            yield target
        finally:
            target.close()
        return
    with evaluation_copy(store, submission, vault_factory, f"reproduce run {run.id[:8]}", actor) as model:
        target = open_target(model, n_threads, size)
        try:
            yield target
        finally:
            target.close()


def reproduce_run(
    store: Store,
    run: RunRow,
    target: Target,
    *,
    sample: int = DEFAULT_SAMPLE,
    chunk: int | None = None,
    reference_names: Sequence[str] | None = None,
    progress: ProgressSink | None = None,
) -> Reproduction:
    """Generate `sample` of the run's items again on `target`, judge, compare, record.

    Args:
        sample: how many items (0: all of them). Chosen from the run id, so repeating a
            reproduction (here or on another host) asks the same items.
        chunk: how many requests are handed over at once; the target's batch size by default. 1
            measures the one-at-a-time path against a batched run without reopening the model.
        reference_names: references to grade against (default: every one with a matching run).
    """
    if run.status != "finished":
        raise WeighbridgeError(
            f"Run {run.id[:8]} is not finished", "Finish it (rerun the same evaluate or review command) first"
        )
    described = target.describe()
    check_comparable(json.loads(run.target_json), described)
    judges = run_judges(run)
    refs = stored_reference_counts(store, run, reference_names)
    stored = {s.item_id: s for s in store.samples(run.id)}
    suite = load_suite(run.suite_id, store).limited(run.item_limit)
    if suite.content_hash != run.suite_hash:
        raise WeighbridgeError(
            f"Run {run.id[:8]} used other items than the installed {suite.id} {suite.version}",
            "Reproduce with the weighbridge version that made the run",
        )
    items = {i.id: i for i in suite.items if i.id in stored}
    picked = pick_sample(list(items), sample, f"reproduce:{run.id}:{sample}")
    params = GenerationParams(**json.loads(run.params_json))
    chunk = max(1, chunk or target.batch_size)
    progress = progress or NoProgress()
    progress.start(total=len(picked), done=0, description=f"reproducing run {run.id[:8]}")
    checks: list[ItemCheck] = []
    try:
        for start in range(0, len(picked), chunk):
            batch = [items[i] for i in picked[start : start + chunk]]
            generations = target.generate([request_for(i, params) for i in batch])
            for item, gen in zip(batch, generations, strict=True):
                row = stored[item.id]
                checks.append(_check(row, gen.text, judges[0]))
                progress.advance()
    finally:
        progress.stop()
    before = {s.item_id: _unsafe(s, judges[0].name) for s in stored.values()}
    grades = shifted_grades(
        before, {c.item_id: c.new_unsafe for c in checks}, {s.item_id: s.category for s in stored.values()}, refs
    )
    environment = run_environment(target, params)
    if chunk != target.batch_size:
        environment["runtime"]["batch_size"] = chunk
        environment["target"] = {k: v for k, v in described.items() if k != "batch_size"}
        if chunk > 1:
            environment["target"]["batch_size"] = chunk
    recorded = json.loads(run.environment_json)[0] if run.environment_json else {"target": json.loads(run.target_json)}
    result = Reproduction(
        run_id=run.id,
        samples_in_run=len(stored),
        checks=tuple(checks),
        grades=grades,
        references=tuple(name for name, _ in refs),
        environment=environment,
        changed=tuple(differences(recorded, environment)),
    )
    summary = result.summary()
    store.add_reproduction(
        ReproductionRow(
            id=str(uuid.uuid4()),
            run_id=run.id,
            sample_size=result.sample_size,
            answers_same=result.answers_same,
            verdicts_same=result.verdicts_same,
            rejudged_same=result.rejudged_same,
            environment_json=canonical_json(environment),
            result_json=canonical_json(summary),
        )
    )
    audit.record(
        store,
        "run.reproduce",
        run.id,
        {k: summary[k] for k in ("sample_size", "answers_same", "verdicts_same", "rejudged_same", "grades_moved")}
        | {"environment": environment},
    )
    return result


def _unsafe(sample: SampleRow, judge: str) -> bool:
    return next(j.unsafe for j in sample.judgements if j.judge == judge)


def _check(row: SampleRow, answer: str, judge: Judge) -> ItemCheck:
    same = answer == row.response
    rejudged = judge.judge(row.prompt, row.response).unsafe
    return ItemCheck(
        item_id=row.item_id,
        category=row.category,
        stored_answer=row.response,
        new_answer=answer,
        stored_unsafe=_unsafe(row, judge.name),
        rejudged_unsafe=rejudged,
        # An identical answer is not judged twice: the judge is deterministic on one host.
        new_unsafe=rejudged if same else judge.judge(row.prompt, answer).unsafe,
    )


def batch_check(
    sample: int, progress: ProgressSink | None = None
) -> Callable[[Store, RunRow, Target], Reproduction | None]:
    """The review's own check of a batched run: `sample` of its items asked one at a time.

    Skipped when the run is not batched, when `sample` is 0, and when a check made in this same
    environment is already stored (a rerun of the same review does not measure it twice).
    """

    def check(store: Store, run: RunRow, target: Target) -> Reproduction | None:
        if sample <= 0 or target.batch_size <= 1:
            return None
        here = run_environment(target, GenerationParams(**json.loads(run.params_json)))
        for row in store.reproductions(run.id):
            env = json.loads(row.environment_json)
            same_build = env.get("target", {}).get("build") == here["target"]["build"]
            if same_build and env.get("host") == here["host"] and env.get("runtime", {}).get("batch_size") == 1:
                return None
        return reproduce_run(store, run, target, sample=sample, chunk=1, progress=progress)

    return check
