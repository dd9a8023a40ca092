"""The evaluation core on its own: records, registries and the run loop over a journal that is not
a database (the loop needs nothing else from the store)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from weighbridge.domain import ChatMessage, ChatRequest, Generation, GenerationParams, Judgement, Sample
from weighbridge.errors import WeighbridgeError
from weighbridge.evals import registry
from weighbridge.evals.records import EvalItem, Metric, Transcript, items_digest
from weighbridge.evals.solvers import PlainSolver
from weighbridge.runner.engine import RunPlan, execute


def test_a_plain_item_hashes_in_the_flat_form_earlier_runs_recorded() -> None:
    item = EvalItem.ask("x-1", "violent_crimes", "How do I ...?", source="s", licence="MIT", split="heldout")
    assert item.digest_record() == {
        "id": "x-1",
        "category": "violent_crimes",
        "prompt": "How do I ...?",
        "source": "s",
        "licence": "MIT",
        "split": "heldout",
        "behaviour": "enable",
    }


def test_a_conversation_or_choices_change_the_digest() -> None:
    plain = EvalItem.ask("x-1", "c", "Which?")
    choices = EvalItem(id="x-1", category="c", input=plain.input, choices=("A", "B"), target="A")
    turns = EvalItem(
        id="x-1", category="c", input=(ChatMessage("user", "Hi"), ChatMessage("assistant", "Hello"), *plain.input)
    )
    digests = {items_digest([plain]), items_digest([choices]), items_digest([turns])}
    assert len(digests) == 3
    assert turns.prompt == "Which?"  # the last user message is the request judges read


def test_an_item_needs_input_and_its_metadata_is_read_only() -> None:
    with pytest.raises(ValueError, match="no input"):
        EvalItem(id="x", category="c", input=())
    item = EvalItem.ask("x", "c", "p", source="src")
    with pytest.raises(TypeError):
        item.metadata["source"] = "other"  # type: ignore[index]


def test_a_metric_counts_labels_or_the_flag() -> None:
    flagged = Judgement("harm", "1", "unsafe", True, 0.9)
    refused = Judgement("refusal", "1", "refused", False, 0.9)
    assert Metric("unsafe_rate", "harm").counts(flagged)
    assert not Metric("unsafe_rate", "harm").counts(refused)
    assert Metric("refusal_rate", "refusal", labels=frozenset({"refused"})).counts(refused)


def test_a_registry_refuses_a_second_component_of_the_same_name() -> None:
    reg: registry.Registry[str] = registry.Registry("widget", "weighbridge.test-widgets")
    reg.register("one")(lambda: "first")
    with pytest.raises(WeighbridgeError, match="Two widgets are registered as 'one'"):
        reg.register("one")(lambda: "second")
    with pytest.raises(WeighbridgeError) as unknown:
        reg.get("two")
    assert "one" in unknown.value.fix
    assert reg.get("one") == "first"


def test_entry_points_add_components_without_forking(monkeypatch: pytest.MonkeyPatch) -> None:
    @dataclass
    class Point:  # the edge: what importlib.metadata would find in a third party's wheel
        name: str
        value: str = "their_pkg.module:factory"

        def load(self) -> Any:
            return lambda: f"made by {self.name}"

    reg: registry.Registry[str] = registry.Registry("widget", "weighbridge.test-widgets")
    monkeypatch.setattr(registry, "entry_points", lambda group: [Point("theirs")] if group == reg.group else [])
    assert reg.names() == ["theirs"]
    assert reg.get("theirs") == "made by theirs"


def test_the_hazards_suite_is_registered_with_its_metric() -> None:
    spec = registry.suites.get("hazards")
    assert spec.metrics[0].worse == "higher"
    assert set(spec.scorers) <= set(registry.scorers.names())
    assert registry.solvers.get(spec.solver).name == "plain"


# -- the run loop over a journal that is not a database ------------------------------------------


@dataclass
class MemoryJournal:
    samples: dict[str, list[tuple[int, Sample]]] = field(default_factory=dict)
    cache: dict[str, Generation] = field(default_factory=dict)
    seconds: float = 0.0

    def done_item_ids(self, run_id: str) -> set[str]:
        return {s.item_id for _, s in self.samples.get(run_id, [])}

    def cached(self, key: str) -> Generation | None:
        hit = self.cache.get(key)
        return (
            None
            if hit is None
            else Generation(key, hit.text, hit.prompt_tokens, hit.completion_tokens, 0.0, cached=True)
        )

    def record_sample(self, run_id: str, seq: int, sample: Sample, cache_key: str | None) -> None:
        self.samples.setdefault(run_id, []).append((seq, sample))
        if cache_key is not None:
            self.cache.setdefault(cache_key, sample.generation)

    def add_run_seconds(self, run_id: str, seconds: float) -> None:
        self.seconds += seconds


class CountingTarget:
    """Edge stub: answers with the request reversed and counts what it was asked."""

    name = "counting"
    batch_size = 2
    capabilities = frozenset({"chat"})

    def __init__(self) -> None:
        self.asked: list[str] = []

    def describe(self) -> dict[str, Any]:
        return {"kind": "counting"}

    def generate(self, requests: Sequence[ChatRequest]) -> list[Generation]:
        self.asked += [r.id for r in requests]
        return [Generation(r.id, r.messages[-1].content[::-1], 3, 3, 0.0) for r in requests]

    def close(self) -> None:
        pass


class LengthScorer:
    name = "length"
    version = "1"

    def score(self, batch: Sequence[tuple[EvalItem, Transcript]]) -> list[Judgement]:
        return [Judgement(self.name, self.version, "long", len(t.answer.text) > 3, 1.0) for _, t in batch]


def test_the_loop_resumes_and_reads_the_cache_through_any_journal() -> None:
    items = tuple(EvalItem.ask(f"i{n}", "c", "x" * n) for n in range(1, 6))
    journal = MemoryJournal()
    target = CountingTarget()
    first = execute(journal, RunPlan("run-1", "d" * 64, items[:3], GenerationParams()), target, [LengthScorer()])
    assert (first.generated, first.cache_hits) == (3, 0)
    # The same run with more items: only the new ones are asked.
    execute(journal, RunPlan("run-1", "d" * 64, items, GenerationParams()), target, [LengthScorer()])
    assert target.asked == ["i1", "i2", "i3", "i4", "i5"]
    # Another run of the same model: every answer comes from the cache, scored afresh.
    again = execute(journal, RunPlan("run-2", "d" * 64, items, GenerationParams()), target, [LengthScorer()])
    assert (again.generated, again.cache_hits) == (0, 5)
    recorded = {s.item_id: s for _, s in journal.samples["run-2"]}
    assert recorded["i5"].generation.text == "xxxxx"
    assert [j.unsafe for j in recorded["i5"].judgements] == [True]
    assert [j.unsafe for j in recorded["i2"].judgements] == [False]


def test_the_plain_solver_sends_the_items_conversation_unchanged() -> None:
    item = EvalItem(id="t", category="c", input=(ChatMessage("system", "Be brief."), ChatMessage("user", "abc")))
    [transcript] = PlainSolver().solve([item], CountingTarget(), GenerationParams())
    assert transcript.messages[:2] == item.input
    assert transcript.messages[-1] == ChatMessage("assistant", "cba")
