"""Bring a stronger judge: `--judge`, `--judge-model`, the validation gate and what a run records.

The end-to-end test serves the small default model with a real `python -m llama_cpp.server` and
uses it as the llm judge's model. A 135M model cannot follow the rubric (its verdicts come back
`unparsed`), so these tests assert on the plumbing — which judge is primary, what the run, the
ledger and the report record — never on the verdicts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.cli_runner import wb
from weighbridge.domain import ChatRequest, Generation, GenerationParams
from weighbridge.errors import WeighbridgeError
from weighbridge.judges import llm as llm_module
from weighbridge.judges import scores, stance_set
from weighbridge.judges.base import judge_identity
from weighbridge.judges.llm import LlmJudge
from weighbridge.judges.refusal import RefusalJudge
from weighbridge.report import validate_report
from weighbridge.services.judge_choice import (
    LLM,
    JudgeChoice,
    RecordedJudge,
    can_judge,
    check_primary,
    judge_of_entry,
    opened_judges,
    primary_judge_record,
)
from weighbridge.services.review import judge_error

GGUF_JUDGE = {"format": "gguf", "name": "guard-8b.Q4_K_M", "sha256": "ab" * 32}
ENDPOINT_JUDGE = {"format": "endpoint", "base_url": "http://gpu-box:8000/v1", "model": "meta-llama/Llama-Guard-3-8B"}


class FixedTarget:
    """A judge model at the edge of the system: answers every request with the same text."""

    name = "fixed"
    capabilities = frozenset({"chat"})
    batch_size = 1

    def __init__(self, text: str) -> None:
        self.text = text
        self.calls = 0

    def describe(self) -> dict[str, Any]:
        return {"adapter": "fixed"}

    def generate(self, requests: Sequence[ChatRequest]) -> list[Generation]:
        self.calls += 1
        return [Generation(r.id, self.text, 1, 1, 0.0) for r in requests]

    def close(self) -> None:
        pass


@pytest.fixture
def scores_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Score files go to (and are read from) a temporary folder, never into the package."""
    folder = tmp_path / "scores"
    folder.mkdir()
    monkeypatch.setattr(scores, "scores_dir", lambda: folder)
    return folder


def write_figures(model: dict[str, str], *, digest: str | None = None) -> Path:
    """A score file as `judges score` writes it, with just the fields the gate and correction read."""
    figures = {
        "judge": LLM,
        "version": LlmJudge.version,
        "test_set": {**{k: stance_set.test_set()[k] for k in ("version", "rows")}, "digest": digest or
                     stance_set.test_set()["digest"]},
        "overall": {"n": 720, "tp": 300, "fn": 30, "tn": 360, "fp": 30, "accuracy": 0.917},
        "by_category": {},
        "complied": {},
        "judge_model": model,
        "judge_model_key": scores.model_key(model),
    }  # fmt: skip
    path = scores.score_path(LLM, LlmJudge.version, model)
    path.write_text(json.dumps(figures), encoding="utf-8")
    return path


def test_judges_without_a_model_keep_the_recorded_form_of_earlier_runs() -> None:
    refusal = RefusalJudge()
    assert judge_identity(refusal) == [refusal.name, refusal.version]
    judge = LlmJudge(FixedTarget(""), model_identity=GGUF_JUDGE)
    assert judge_identity(judge) == [LLM, LlmJudge.version, GGUF_JUDGE]


def test_an_unvalidated_judge_is_refused_with_both_ways_on(scores_here: Path) -> None:
    choice = JudgeChoice(LLM, "guard.yaml")
    with pytest.raises(WeighbridgeError) as refused:
        check_primary(LLM, LlmJudge.version, ENDPOINT_JUDGE, choice)
    assert "has no figures on the shipped stance test set" in refused.value.problem
    assert "weighbridge judges score --judge llm --judge-model guard.yaml" in refused.value.fix
    assert "--allow-unvalidated" in refused.value.fix
    said: list[str] = []
    allowed = JudgeChoice(LLM, "guard.yaml", allow_unvalidated=True)
    assert check_primary(LLM, LlmJudge.version, ENDPOINT_JUDGE, allowed, said.append) is False
    assert said and "not validated" in said[0]
    assert judge_error(LLM, LlmJudge.version, ENDPOINT_JUDGE) is None  # nothing to correct with
    record = primary_judge_record([LLM, LlmJudge.version, ENDPOINT_JUDGE], corrected=False, unparsed=3)
    assert record["validated"] is False and record["correction_applied"] is False
    assert "NOT validated" in record["note"] and "3 of its verdicts were unparsed" in record["note"]


def test_figures_validate_exactly_their_judge_model(scores_here: Path) -> None:
    write_figures(GGUF_JUDGE)
    choice = JudgeChoice(LLM, "guard.gguf")
    assert check_primary(LLM, LlmJudge.version, GGUF_JUDGE, choice) is True
    error = judge_error(LLM, LlmJudge.version, GGUF_JUDGE)
    assert error is not None and (error.tp, error.fn, error.tn, error.fp) == (300, 30, 360, 30)
    record = primary_judge_record([LLM, LlmJudge.version, GGUF_JUDGE], corrected=True)
    assert record["validated"] and record["correction_applied"] and record["model"] == GGUF_JUDGE
    # Another file of weights, another version of the judge: not these figures.
    other = {**GGUF_JUDGE, "sha256": "cd" * 32}
    with pytest.raises(WeighbridgeError, match="no figures"):
        check_primary(LLM, LlmJudge.version, other, choice)
    assert judge_error(LLM, "0.9.0", GGUF_JUDGE) is None
    # An endpoint is known by its served model name, wherever it is served from.
    write_figures(ENDPOINT_JUDGE)
    moved = {**ENDPOINT_JUDGE, "base_url": "http://other-host:8000/v1"}
    assert check_primary(LLM, LlmJudge.version, moved, choice) is True


def test_figures_from_another_test_set_do_not_validate(scores_here: Path) -> None:
    write_figures(GGUF_JUDGE, digest="0" * 64)
    with pytest.raises(WeighbridgeError, match="no figures"):
        check_primary(LLM, LlmJudge.version, GGUF_JUDGE, JudgeChoice(LLM, "guard.gguf"))


def test_scoring_a_judge_model_once_validates_it(scores_here: Path) -> None:
    """`weighbridge judges score --judge llm --judge-model M` is the way from refused to validated."""
    target = FixedTarget("1.b 1\n2.b 1\n3.b 1")  # refuses everything: a poor judge, but a scored one
    judge = LlmJudge(target, model_identity=GGUF_JUDGE)
    figures = scores.score_judge(judge)
    assert target.calls == 1  # the 720 rows went out as one batch (an endpoint sends them concurrently)
    assert figures["judge_model"] == GGUF_JUDGE and figures["overall"]["n"] == stance_set.test_set()["rows"]
    assert check_primary(LLM, LlmJudge.version, GGUF_JUDGE, JudgeChoice(LLM, "guard.gguf")) is True
    with pytest.raises(WeighbridgeError, match="already scored"):
        scores.score_judge(judge)


@pytest.mark.parametrize(
    ("choice", "message"),
    [
        (JudgeChoice("refusal"), "cannot be primary"),
        (JudgeChoice("nope"), "Unknown judge 'nope'"),
        (JudgeChoice(LLM), "needs a judge model"),
        (JudgeChoice("harm", "judge.gguf"), "--judge-model is for --judge llm"),
    ],
)
def test_choices_that_cannot_make_a_primary_judge(choice: JudgeChoice, message: str) -> None:
    with pytest.raises(WeighbridgeError, match=re.escape(message)), opened_judges(choice):
        pass


def test_a_judge_known_only_from_its_record_finds_work_but_cannot_judge() -> None:
    recorded = judge_of_entry([LLM, LlmJudge.version, ENDPOINT_JUDGE])
    assert isinstance(recorded, RecordedJudge)
    assert judge_identity(recorded) == [LLM, LlmJudge.version, ENDPOINT_JUDGE]
    with pytest.raises(WeighbridgeError, match="judge model is not open here"):
        can_judge([recorded])
    with pytest.raises(WeighbridgeError, match="--judge-model"):
        recorded.judge("request", "answer")
    assert judge_of_entry(["refusal", RefusalJudge.version]).name == "refusal"


@pytest.mark.slow
def test_an_endpoint_judge_is_primary_only_when_allowed_and_the_report_says_so(
    tmp_path: Path, default_model_path: Path, llama_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A short rubric answer keeps the run fast; the small model cannot follow the rubric anyway.
    monkeypatch.setattr(llm_module, "PARAMS", GenerationParams(max_tokens=12, temperature=0.0, seed=0))
    spec = tmp_path / "judge.yaml"
    spec.write_text(f"base_url: {llama_server}\nmodel: smollm2\nconcurrency: 2\n")
    db = f"sqlite:///{tmp_path / 'j.db'}"
    judge_args = ["--judge", "llm", "--judge-model", str(spec)]

    refused = wb("review", "--limit", "1", "--no-reference", *judge_args, "--db", db)
    assert refused.returncode == 1
    assert "has no figures on the shipped stance test set" in refused.stderr
    assert "--allow-unvalidated" in refused.stderr and "weighbridge judges score" in refused.stderr
    assert not (tmp_path / "j.db").exists()  # refused before the store was touched

    sub = wb("submit", str(default_model_path), "--db", db)
    assert sub.returncode == 0, sub.stderr
    match = re.search(r"^Submission ([0-9a-f-]{36}) ", sub.stdout, re.MULTILINE)
    assert match, sub.stdout
    submission = match.group(1)[:8]
    refused = wb("evaluate", submission, "--limit", "1", *judge_args, "--db", db)
    assert refused.returncode == 1 and "--allow-unvalidated" in refused.stderr

    ev = wb("evaluate", submission, "--limit", "1", "--max-tokens", "8", *judge_args, "--allow-unvalidated", "--db", db)
    assert ev.returncode == 0, ev.stderr
    assert "not validated (--allow-unvalidated)" in ev.stderr
    run_id = ev.stdout.split()[1]

    from weighbridge.cliutil import open_store
    from weighbridge.services.evidence import entries_about

    expected = [LLM, LlmJudge.version, {"format": "endpoint", "base_url": llama_server, "model": "smollm2"}]
    store = open_store(db)
    try:
        run = store.get_run(run_id)
        recorded = json.loads(run.judges_json)
        samples = store.samples(run.id)
        [(_, started)] = entries_about(store, run.id, "run.start")
    finally:
        store.close()
    assert recorded[0] == expected and [j[0] for j in recorded[1:]] == ["harm", "refusal"]
    assert started["judges"] == recorded  # the signed ledger entry names the same judges
    assert len(samples) == 13
    for sample in samples:
        by_judge = {j.judge: j for j in sample.judgements}
        assert set(by_judge) == {"llm", "harm", "refusal"}  # the harm judge's verdicts are still kept
        assert by_judge["llm"].label in ("refused", "unsafe", "safe", "unparsed")

    out = tmp_path / "rep"
    rep = wb("report", run_id[:8], "--out", str(out), "--db", db)
    assert rep.returncode == 0, rep.stderr
    report = json.loads((out / "report.json").read_text())
    validate_report(report)
    primary = report["primary_judge"]
    assert primary["name"] == "llm" and primary["model"] == expected[2]
    assert primary["validated"] is False and primary["correction_applied"] is False
    llm_verdicts = [next(j for j in s.judgements if j.judge == "llm") for s in samples]
    assert primary["unparsed"] == sum(v.label == "unparsed" for v in llm_verdicts)
    assert report["judge_correction"] is None
    assert report["judges"][0]["name"] == "llm" and report["judges"][0]["model"] == expected[2]
    unsafe = sum(v.unsafe for v in llm_verdicts)
    assert report["suites"]["hazards"]["overall"]["unsafe"] == unsafe  # the llm judge's verdicts decide
    html = (out / "report.html").read_text()
    assert 'id="unvalidated-judge"' in html and "no judge-error correction is applied" in html
