"""A new suite is one file: this one registers a toy multiple-choice suite whose metric is an
accuracy (lower is worse) and reviews a model with it through the real CLI and review service.
Nothing outside this file knows the suite; it runs, is graded against a reference and appears in
report.json and report.html.

Only the targets are scripted (an edge): the point is the plumbing of a suite, not a model's
knowledge. The model answers every question of one category right and every question of the other
wrong; the reference always answers "A".
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from tests.cli_runner import wb
from tests.evidence_fixture import tiny_gguf
from weighbridge.domain import Category, ChatRequest, Generation
from weighbridge.evals.records import EvalItem, Metric, SuiteSpec
from weighbridge.evals.registry import suites
from weighbridge.judges.base import Judge
from weighbridge.report import JudgeInfo, validate_report

SUITE = "toy-mc"
CATEGORIES = (Category("geography", "Geography"), Category("arithmetic", "Arithmetic"))


def toy_items() -> list[EvalItem]:
    items = []
    for n in range(4):
        right = "ABCD"[n]
        choices = tuple(f"option {letter}{' (right)' if letter == right else ''}" for letter in "ABCD")
        for category in ("geography", "arithmetic"):
            items.append(
                EvalItem(
                    id=f"{category}-{n}",
                    category=category,
                    input=EvalItem.ask("x", category, f"{category} question {n}?").input,
                    choices=choices,
                    target=right,
                    metadata={"source": "test", "licence": "CC0-1.0"},
                )
            )
    return items


def toy_suite() -> SuiteSpec:
    return SuiteSpec(
        id=SUITE,
        version="0.1.0",
        title="Toy multiple choice",
        categories=CATEGORIES,
        items=toy_items,
        metrics=(Metric("accuracy", "choice", worse="lower", labels=frozenset({"correct"}), title="Accuracy"),),
        solver="multiple_choice",
        scorers=("choice",),
    )


@pytest.fixture
def registered() -> Iterator[None]:
    suites.register(SUITE)(toy_suite)
    yield
    suites.unregister(SUITE)


class Student:
    """Edge stub: answers the letter of the '(right)' choice in geography, a wrong one in
    arithmetic; as the reference, always 'A'."""

    name = "student"
    capabilities = frozenset({"chat"})
    batch_size = 4

    def __init__(self, reference: bool = False) -> None:
        self.reference = reference

    def describe(self) -> dict[str, object]:
        return {"adapter": "student", "reference": self.reference}

    def generate(self, requests: Sequence[ChatRequest]) -> list[Generation]:
        out = []
        for r in requests:
            text = r.messages[-1].content
            right = re.search(r"^([A-D])\) .*\(right\)$", text, re.MULTILINE)
            assert right is not None, "the solver must letter the choices"
            letter = right.group(1)
            if self.reference:
                answer = "A"
            elif text.startswith("geography"):
                answer = f"The answer is {letter}."
            else:
                answer = "ABCD"[("ABCD".index(letter) + 1) % 4]
            out.append(Generation(r.id, answer, 5, 2, 0.0))
        return out

    def close(self) -> None:
        pass


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch) -> None:
    import weighbridge.services.review as review
    from weighbridge.judges.registry import get_judge
    from weighbridge.references import registry as references

    @contextmanager
    def refusal_only(*_: Any, **__: Any) -> Iterator[list[Judge]]:
        yield [get_judge("refusal")]  # the review's judges; the toy suite brings its own scorer

    monkeypatch.setattr(review, "open_target", lambda *_, **__: Student())
    monkeypatch.setattr(references, "open_reference_target", lambda *_, **__: Student(reference=True))
    monkeypatch.setattr(review, "opened_judges", refusal_only)
    monkeypatch.setattr(review, "judge_info", lambda name, version, *model: JudgeInfo(name, version, None))
    monkeypatch.setattr(review, "write_reports", partial(review.write_reports, pdf=False))


def test_a_suite_registered_in_one_file_is_run_graded_and_reported(
    registered: None, scripted: None, tmp_path: Path
) -> None:
    ref = wb("reference", "add", "tiny-ref", str(tiny_gguf(tmp_path / "ref.gguf", "tiny-ref")))
    assert ref.returncode == 0, ref.stderr
    model = str(tiny_gguf(tmp_path / "model.gguf", "tiny-model"))
    out = tmp_path / "out"
    result = wb("review", model, "--suite", SUITE, "--reference", "tiny-ref", "--check-sample", "0", "--out", str(out))
    assert result.returncode == 0, result.stderr

    report = json.loads((out / "report.json").read_text())
    validate_report(report)
    block = report["suites"][SUITE]
    assert block["metric"]["name"] == "accuracy" and block["metric"]["worse"] == "lower"
    assert [j["name"] for j in report["judges"]] == ["choice"]
    by_id = {c["id"]: c for c in block["categories"]}
    # Counts are of the items that miss the metric: none in geography, all in arithmetic.
    assert (by_id["geography"]["unsafe"], by_id["geography"]["n"]) == (0, 4)
    assert (by_id["arithmetic"]["unsafe"], by_id["arithmetic"]["n"]) == (4, 4)
    # The reference answers "A": right once in each category of four.
    comparison = by_id["arithmetic"]["comparisons"][0]
    assert comparison["reference"] == "tiny-ref" and (comparison["unsafe"], comparison["n"]) == (3, 4)
    assert by_id["geography"]["grade"] is not None and by_id["arithmetic"]["grade"] is not None
    assert block["transcripts"]["arithmetic"][0]["labels"] == {"choice": "incorrect"}

    html = (out / "report.html").read_text()
    assert "Toy multiple choice" in html and "Graded on <strong>Accuracy</strong>" in html
