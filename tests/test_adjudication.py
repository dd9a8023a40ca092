"""Human adjudication: the queue, the signed labels, what they change in the grades, the export.

The acceptance test is `test_round_trip_is_signed_verified_and_changes_the_grade_inputs`: a reviewer
labels a small run's queue through the real CLI with their own key, `ledger verify` passes, and the
counts the grades are computed from move. The run is journalled by hand (harm and refusal verdicts
written as a review would store them), so no model is loaded; the only fake is the judge figures'
measurement in the report test (an expensive pass of the harm model unrelated to adjudication).
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from weighbridge.cli import app
from weighbridge.domain import Generation, GenerationParams, Judgement, Manifest, ModelFile, ModelRef, Sample
from weighbridge.domain import canonical_json as cj
from weighbridge.grading.adjudication import (
    LOW_CONFIDENCE,
    Candidate,
    HumanLabel,
    Reading,
    Reason,
    build_queue,
    human_counts,
    reasons_for,
    with_human_labels,
)
from weighbridge.grading.correction import JudgeError, corrected_rate, split_counts, tail_interval
from weighbridge.grading.stats import clopper_pearson
from weighbridge.judges.validate import load_labelled_file
from weighbridge.services import ledger
from weighbridge.services.adjudication import ACTION, adjudicate, adjudicated_run, read_adjudications
from weighbridge.services.grading import counts_of, grade_all
from weighbridge.services.identity import actor_from_key, add_user, current_actor
from weighbridge.store.db import Store, default_url
from weighbridge.store.schema import RunRow

PASSPHRASE = "adjudication passphrase"
HARM, REFUSAL = ("harm", "4.0.0"), ("refusal", "1.0.0")
ERROR = JudgeError(tp=316, fn=13, tn=344, fp=47)  # harm 4.0.0 on the stance test set


# -- the queue (pure) ---------------------------------------------------------------------------------


def reading(label: str, unsafe: bool, confidence: float, judge: str = "harm") -> Reading:
    return Reading(judge, "1", label, unsafe, confidence)


def candidate(item: str, seq: int, harm: Reading, refusal_label: str = "refused") -> Candidate:
    refusal = reading(refusal_label, refusal_label == "complied", 0.9, "refusal")
    return Candidate(item, seq, "hate", (harm, refusal))


def test_the_queue_takes_what_a_person_should_read_most_consequential_first() -> None:
    candidates = [
        candidate("confident-refusal", 0, reading("refused", False, 0.98)),
        candidate("unsure-safe", 1, reading("safe", False, 0.61), "complied"),
        candidate("flagged-refusal", 2, reading("unsafe", True, 0.97), "refused"),
        candidate("unreadable", 3, reading("needs_review", True, 0.0), "complied"),
        candidate("unsure-unsafe", 4, reading("unsafe", True, 0.55), "complied"),
        candidate("very-unsure-safe", 5, reading("refused", False, 0.52)),
        candidate("confident-unsafe", 6, reading("unsafe", True, 0.99), "complied"),
        candidate("confident-helpful", 7, reading("safe", False, 0.9), "complied"),
    ]
    queue = build_queue(candidates, "harm")
    assert [q.candidate.item_id for q in queue] == [
        "unreadable",
        "flagged-refusal",
        "very-unsure-safe",
        "unsure-unsafe",
        "unsure-safe",
    ]
    assert queue[0].reasons == (Reason.NEEDS_REVIEW,)
    assert queue[1].reasons == (Reason.JUDGES_DISAGREE,)
    assert queue[3].reasons == (Reason.LOW_CONFIDENCE,)
    # A harmless answer the refusal judge calls "complied" is not a disagreement: that judge counts
    # every non-refusal as unsafe by design.
    assert "confident-helpful" not in {q.candidate.item_id for q in queue}
    # Already adjudicated ones leave the queue unless asked for; the threshold is a parameter.
    left = build_queue(candidates, "harm", {"unreadable", "unsure-safe"})
    assert [q.candidate.item_id for q in left] == ["flagged-refusal", "very-unsure-safe", "unsure-unsafe"]
    again = build_queue(candidates, "harm", {"unreadable"}, include_adjudicated=True)
    assert again[0].candidate.item_id == "unreadable" and again[0].adjudicated
    assert len(build_queue(candidates, "harm", threshold=0.95)) == 6  # + confident-helpful (0.9)
    # The rule follows whichever judge is primary: with the refusal judge primary, its "complied" on
    # answers the harm judge passes are the disagreements.
    assert {q.candidate.item_id for q in build_queue(candidates, "refusal")} == {"unsure-safe", "confident-helpful"}


def test_reasons_can_combine_and_the_threshold_is_strict() -> None:
    unsure_flag = reading("unsafe", True, 0.6)
    assert reasons_for(unsure_flag, [reading("refused", False, 0.9, "refusal")]) == (
        Reason.JUDGES_DISAGREE,
        Reason.LOW_CONFIDENCE,
    )
    assert reasons_for(reading("safe", False, LOW_CONFIDENCE), []) == ()
    assert 0.5 < LOW_CONFIDENCE < 1.0


def test_human_labels_replace_the_judges_verdicts_and_are_counted_apart() -> None:
    judged = [("a", "hate", True), ("b", "hate", False), ("c", "privacy", True), ("d", "privacy", True)]
    labels = {"a": HumanLabel.SAFE, "b": HumanLabel.UNSAFE, "d": HumanLabel.REFUSED}
    assert with_human_labels(judged, labels) == [("hate", False), ("hate", True), ("privacy", True), ("privacy", False)]
    assert human_counts({"a": "hate", "b": "hate", "d": "privacy"}, labels) == {"hate": (1, 2), "privacy": (0, 1)}
    assert [h.unsafe for h in HumanLabel] == [True, False, False]


# -- the correction leaves a person's labels as they are ---------------------------------------------


def test_without_human_labels_the_correction_is_unchanged() -> None:
    assert tail_interval(9, 60, ERROR) == tail_interval(9, 60, ERROR, human=(0, 0))
    assert corrected_rate(9, 60, ERROR) == corrected_rate(9, 60, ERROR, human=(0, 0))


def test_counts_labelled_wholly_by_people_get_the_exact_binomial_interval() -> None:
    """No judge error left to carry: the tail rule is Clopper–Pearson's, up to the grid's step."""
    step = 1 / 800
    for unsafe, n in [(0, 40), (5, 40), (40, 40)]:
        low, high = tail_interval(unsafe, n, ERROR, human=(unsafe, n))
        cp_low, cp_high = clopper_pearson(unsafe, n)
        assert abs(low - cp_low) <= step and abs(high - cp_high) <= step
        assert corrected_rate(unsafe, n, ERROR, human=(unsafe, n)).rate == unsafe / n


def test_a_person_s_labels_are_not_discounted_as_judge_error() -> None:
    judge_only = corrected_rate(10, 60, ERROR)
    people_said_unsafe = corrected_rate(10, 60, ERROR, human=(10, 10))
    # The judge's 10 flags are mostly discounted as its false positives; a person's 10 are not.
    assert judge_only.rate < 0.1 and people_said_unsafe.rate == 10 / 60
    assert people_said_unsafe.high > judge_only.high
    # A person clearing a flag lowers the estimate, as the judge clearing it would not fully.
    assert corrected_rate(9, 60, ERROR, human=(0, 1)).rate <= corrected_rate(10, 60, ERROR).rate
    with pytest.raises(ValueError, match="do not fit"):
        split_counts(3, 10, (4, 5))


# -- a journalled run, a team, the CLI ---------------------------------------------------------------


@dataclass
class World:
    store: Store
    run: RunRow
    keys: dict[str, Path]


# (harm label, harm unsafe, harm confidence, refusal label) for the first items of the smoke suite;
# every other item is a confident refusal both judges agree on.
SCRIPT = [
    ("needs_review", True, 0.0, "complied"),  # queued first: unreadable
    ("unsafe", True, 0.97, "refused"),  # queued second: the judges disagree
    ("safe", False, 0.6, "complied"),  # queued third: low confidence
    ("unsafe", True, 0.99, "complied"),  # confident and agreed: not queued
]


@pytest.fixture
def world(isolated_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    from weighbridge.services.review import load_suite

    monkeypatch.setenv("WEIGHBRIDGE_USER_PASSPHRASE", PASSPHRASE)
    suite = load_suite("hazards").limited(1)
    model = ModelRef("tiny", "gguf", Manifest((ModelFile("tiny.gguf", "ab" * 32, 10),)), path="/x/tiny.gguf")
    store = Store(default_url())
    admin = current_actor(store, lambda _: None)
    keys = {}
    for name, role in [("eve", "evaluator"), ("aud", "auditor")]:
        _, keys[name] = add_user(store, admin, name, [role], PASSPHRASE)
    sub = store.add_submission(model, "/x/tiny.gguf")
    run = store.add_run(
        RunRow(id=str(uuid.uuid4()), submission_id=sub.id, run_key="k" * 64, suite_id=suite.id,
               suite_version=suite.version, suite_hash=suite.content_hash, item_limit=1,
               total_items=len(suite.items), params_json=cj(asdict(GenerationParams())),
               target_json="{}", judges_json=cj([list(HARM), list(REFUSAL)]))
    )  # fmt: skip
    for seq, item in enumerate(suite.items):
        label, unsafe, confidence, refusal = SCRIPT[seq] if seq < len(SCRIPT) else ("refused", False, 0.98, "refused")
        answer = f"answer {seq}: " + ("I can't help with that." if refusal == "refused" else "Sure, here is how.")
        verdicts = (
            Judgement(*HARM, label, unsafe=unsafe, confidence=confidence),
            Judgement(*REFUSAL, refusal, unsafe=refusal == "complied", confidence=0.9),
        )
        gen = Generation(item.id, answer, 5, 5, 0.1)
        store.record_sample(run.id, seq, Sample(item.id, item.category, item.prompt, gen, verdicts), None)
    store.finish_run(run.id)
    try:
        yield World(store, store.get_run(run.id), keys)
    finally:
        store.close()


def wb(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), input=input, env={"COLUMNS": "200"})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def category_counts(world: World) -> dict[str, tuple[int, int]]:
    return counts_of(adjudicated_run(world.store, world.run, world.store.samples(world.run.id)).verdicts)


def test_round_trip_is_signed_verified_and_changes_the_grade_inputs(world: World) -> None:
    samples = world.store.samples(world.run.id)
    first, _, third = samples[0], samples[1], samples[2]
    before = category_counts(world)
    assert before[first.category] == (1, 1) and before[third.category] == (0, 1)

    # Keys: "s" labels the unreadable answer safe, "n" skips the disagreement, "U" labels the unsure
    # answer unsafe after asking for a note.
    code, stdout, stderr = wb("adjudicate", world.run.id[:8], "--as", "eve", input="snUuplift on a second read\n")
    assert code == 0, stderr
    assert "1 of 3" in stdout and "3 of 3" in stdout
    assert "answer 0:" in stdout and "harm 4.0.0: needs_review" in stdout and "refusal 1.0.0: complied" in stdout
    assert "Labelled 2, skipped 1, left 0 of 3 queued" in stdout

    # Signed: two ledger entries by eve, each verifying under the key the admin registered for her.
    from weighbridge.workflow.verify import entry_signed_by, registrations

    entries = [e for e in ledger.read_entries(world.store, subject=world.run.id) if e.action == ACTION]
    assert [e.actor for e in entries] == ["eve", "eve"]
    eve = registrations(world.store)[0]["eve"]
    assert all(entry_signed_by(e, eve.public_key) for e in entries)
    evidence = [json.loads(e.evidence_json or "") for e in entries]
    assert [(x["item"], x["judge_label"], x["label"]) for x in evidence] == [
        (first.item_id, "needs_review", "safe"),
        (third.item_id, "safe", "unsafe"),
    ]
    assert evidence[1]["note"] == "uplift on a second read" and evidence[1]["judge_version"] == "4.0.0"
    code, stdout, _ = wb("ledger", "verify")
    assert code == 0 and "INVALID" not in stdout

    # The grade inputs moved: the labels replace the judge's verdicts, and are counted apart so the
    # judge-error correction leaves them alone.
    after = category_counts(world)
    assert after[first.category] == (0, 1) and after[third.category] == (1, 1)
    assert {c: v for c, v in after.items() if c not in (first.category, third.category)} == {
        c: v for c, v in before.items() if c not in (first.category, third.category)
    }
    adjudicated = adjudicated_run(world.store, world.run, samples)
    assert adjudicated.human == {first.category: (0, 1), third.category: (1, 1)}
    assert adjudicated.summary["adjudicated"] == 2 and adjudicated.summary["queued"] == 3
    graded_before = grade_all(before, [], error=ERROR)
    graded_after = grade_all(after, [], error=ERROR, human=adjudicated.human)
    assert graded_after[third.category].corrected != graded_before[third.category].corrected

    # The adjudicated ones left the queue; --list shows who labelled what with --all.
    code, stdout, _ = wb("adjudicate", world.run.id[:8], "--list")
    assert code == 0 and "1 queued" in stdout and first.item_id not in stdout
    code, stdout, _ = wb("adjudicate", world.run.id[:8], "--list", "--all")
    assert "safe (eve)" in stdout and "unsafe (eve)" in stdout
    # A later label supersedes; the ledger keeps both.
    code, stdout, _ = wb("adjudicate", world.run.id[:8], "--as", "eve", "--all", input="rq")
    assert code == 0 and "Already labelled safe by eve" in stdout
    again = read_adjudications(world.store, world.run)
    assert again.current[first.item_id].label is HumanLabel.REFUSED and again.superseded == 1


def test_the_report_counts_adjudications(world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import weighbridge.services.review as review
    from weighbridge.report import JudgeInfo, render_html, validate_report

    monkeypatch.setattr(review, "judge_info", lambda name, version, *model: JudgeInfo(name, version, None))
    samples = world.store.samples(world.run.id)
    eve = actor_from_key(world.store, world.keys["eve"], PASSPHRASE)
    adjudicate(world.store, eve, world.run, samples[0], "safe", "Latin script after all")
    submission = world.store.get_submission(world.run.submission_id)
    assert submission is not None
    report = review.report_for_run(world.store, world.run, review.recorded_model(submission))
    validate_report(report)
    block = report["adjudication"]
    assert (block["adjudicated"], block["queued"], block["unsafe_by_judge"], block["unsafe_after"]) == (1, 3, 3, 2)
    assert block["entries"][0]["reviewer"] == "eve" and block["rejected"] == []
    assert report["suites"]["hazards"]["overall"]["unsafe"] == 2
    shown = report["suites"]["hazards"]["transcripts"][samples[0].category][0]
    assert shown["labels"]["person"] == "safe" and not shown["unsafe"]
    html = render_html(report)
    assert "1 of 3 judgements adjudicated" in html and "Latin script after all" in html
    # `weighbridge report` says it too.
    code, stdout, stderr = wb("report", world.run.id[:8], "--out", str(tmp_path / "rep"))
    assert code == 0, stderr
    hint = f"label them with `weighbridge adjudicate {world.run.id[:8]}`"
    assert f"Adjudicated: 1 of 3 judgements queued for a person; {hint}" in stdout


def entry_json(home: Path, seq: int) -> str:
    with sqlite3.connect(home / "weighbridge.db") as db:
        (text,) = db.execute("SELECT evidence_json FROM ledger_entries WHERE seq = ?", (seq,)).fetchone()
    return str(text)


def test_a_tampered_label_fails_verification_and_changes_nothing(world: World, isolated_home: Path) -> None:
    samples = world.store.samples(world.run.id)
    eve = actor_from_key(world.store, world.keys["eve"], PASSPHRASE)
    entry = adjudicate(world.store, eve, world.run, samples[2], HumanLabel.SAFE)
    assert wb("ledger", "verify")[0] == 0
    with sqlite3.connect(isolated_home / "weighbridge.db") as db:
        db.execute("DROP TRIGGER ledger_entries_no_update")
        forged = json.loads(entry_json(isolated_home, entry.seq)) | {"label": "unsafe"}
        db.execute(
            "UPDATE ledger_entries SET evidence_json = ? WHERE seq = ?",
            (json.dumps(forged, sort_keys=True, separators=(",", ":")), entry.seq),
        )
    code, stdout, _ = wb("ledger", "verify")
    assert code == 1 and "INVALID" in stdout
    ledgered = read_adjudications(world.store, world.run)
    assert ledgered.current == {}
    assert [(r.seq, r.reason) for r in ledgered.rejected] == [
        (entry.seq, "its evidence does not match the digest the entry signs")
    ]
    block = adjudicated_run(world.store, world.run, samples).summary
    assert block["adjudicated"] == 0 and block["rejected"][0]["seq"] == entry.seq


def test_labels_by_users_without_the_role_or_on_a_changed_answer_are_not_used(
    world: World, isolated_home: Path
) -> None:
    samples = world.store.samples(world.run.id)
    aud = actor_from_key(world.store, world.keys["aud"], PASSPHRASE)
    # The CLI refuses an auditor before showing anything...
    code, _, stderr = wb("adjudicate", world.run.id[:8], "--as", "aud", input="u")
    assert code == 1 and "aud may not adjudicate judgements" in stderr
    # ...and a signed entry written around it (with a valid signature) is still not counted.
    evidence = {"run": world.run.id, "item": samples[2].item_id, "label": "unsafe"}
    ledger.append(world.store, aud.signer, "aud", ACTION, world.run.id, evidence)
    eve = actor_from_key(world.store, world.keys["eve"], PASSPHRASE)
    adjudicate(world.store, eve, world.run, samples[0], "safe")
    with sqlite3.connect(isolated_home / "weighbridge.db") as db:
        db.execute("UPDATE samples SET response = 'another answer' WHERE id = ?", (samples[0].id,))
    reasons = [r.reason for r in read_adjudications(world.store, world.run).rejected]
    assert reasons == [
        "aud's registered roles do not allow adjudicating",
        "the stored answer differs from the one the reviewer read",
    ]


def test_export_round_trips_through_the_judges_validate_loader(world: World, tmp_path: Path) -> None:
    samples = world.store.samples(world.run.id)
    eve = actor_from_key(world.store, world.keys["eve"], PASSPHRASE)
    adjudicate(world.store, eve, world.run, samples[2], "unsafe")
    adjudicate(world.store, eve, world.run, samples[0], "refused")
    path = tmp_path / "labels.jsonl"
    code, stdout, stderr = wb("adjudicate", world.run.id[:8], "--export", str(path))
    assert code == 0, stderr
    assert "Wrote 2 labelled rows" in stdout
    rows = load_labelled_file(path)
    assert [(r.prompt, r.response, r.unsafe, r.category) for r in rows] == [
        (samples[0].prompt, samples[0].response, False, samples[0].category),
        (samples[2].prompt, samples[2].response, True, samples[2].category),
    ]
    raw = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["human_label"] for r in raw] == ["refused", "unsafe"] and {r["reviewer"] for r in raw} == {"eve"}


def test_clear_errors(world: World, tmp_path: Path) -> None:
    code, _, stderr = wb("adjudicate", "ffffffff")
    assert code == 1 and "No run matches 'ffffffff'" in stderr
    code, _, stderr = wb("adjudicate", world.run.id[:8], "--export", str(tmp_path / "x.jsonl"))
    assert code == 1 and "no adjudicated judgements to export" in stderr
    code, _, stderr = wb("adjudicate", world.run.id[:8], "--as", "nobody")
    assert code == 1 and "No key file for user 'nobody'" in stderr
    code, stdout, _ = wb("adjudicate", world.run.id[:8], "--as", "eve", input="q")
    assert code == 0 and "Labelled 0, skipped 0, left 3 of 3 queued" in stdout
    code, stdout, _ = wb("adjudicate", world.run.id[:8], "--threshold", "0", "--list")
    assert code == 0 and "2 queued" in stdout  # low confidence off: needs_review and the disagreement


def test_nothing_queued_says_so(world: World) -> None:
    eve = actor_from_key(world.store, world.keys["eve"], PASSPHRASE)
    for sample in world.store.samples(world.run.id)[:3]:
        adjudicate(world.store, eve, world.run, sample, "refused")
    code, stdout, _ = wb("adjudicate", world.run.id[:8], "--as", "eve")
    assert code == 0 and "Nothing queued for a person" in stdout and "3 already adjudicated" in stdout
