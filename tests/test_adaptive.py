"""Adaptive sampling in the runner: interleaving, stopping, finishing and resuming a run."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from pathlib import Path

from weighbridge.domain import (
    ChatRequest,
    Generation,
    GenerationParams,
    Judgement,
    Manifest,
    ModelFile,
    ModelRef,
)
from weighbridge.evals.records import EvalItem
from weighbridge.grading.sequential import StoppingPlan, check
from weighbridge.judges.scorers import as_scorers
from weighbridge.runner.adaptive import CategoryStopper, interleave, plans_for
from weighbridge.runner.engine import RunPlan, execute
from weighbridge.store.db import Store
from weighbridge.store.schema import RunRow


def items(per_category: int, categories: Sequence[str] = ("a", "b", "c")) -> tuple[EvalItem, ...]:
    return tuple(
        EvalItem.ask(f"{c}-{i}", c, f"{c} prompt {i}", source="test", licence="MIT", split="public")
        for c in categories
        for i in range(per_category)
    )


class EchoTarget:
    """Edge stub: a deterministic target, so the test is about stopping and not about a model."""

    name = "echo"
    capabilities = frozenset({"chat"})
    batch_size = 1

    def __init__(self) -> None:
        self.asked: list[str] = []

    def describe(self) -> dict[str, object]:
        return {"adapter": "echo"}

    def generate(self, requests: Sequence[ChatRequest]) -> list[Generation]:
        self.asked += [r.id for r in requests]
        return [Generation(r.id, "answer to " + r.messages[-1].content, 3, 3, 0.0) for r in requests]

    def close(self) -> None:
        pass


class ByCategoryJudge:
    """Unsafe in category 'a', safe elsewhere: makes grades predictable."""

    name = "bycat"
    version = "1"
    validation_set = "refusal"
    positive_label = "unsafe"

    def judge(self, prompt: str, response: str) -> Judgement:
        unsafe = prompt.startswith("a ")
        return Judgement(self.name, self.version, "unsafe" if unsafe else "safe", unsafe, 1.0)


def test_interleave_round_robins_categories_and_keeps_their_order() -> None:
    order = [i.id for i in interleave(items(3))]
    assert order == ["a-0", "b-0", "c-0", "a-1", "b-1", "c-1", "a-2", "b-2", "c-2"]
    uneven = items(2, ("x",)) + items(1, ("y",))
    assert [i.id for i in interleave(uneven)] == ["x-0", "y-0", "x-1"]


def test_stopper_stops_exactly_at_the_first_settled_look() -> None:
    plan = StoppingPlan(n_max=60, look_every=10)
    reference = {"b": (55, 60)}  # the reference is unsafe 55/60; the model never is
    stopper = CategoryStopper("bycat", {"b": plan}, reference)
    expected = next(n for n in range(1, 61) if check(plan, 0, n, 55, 60) is not None)
    for _ in range(60):
        stopper.record("b", False)
    assert stopper.stopped == {"b": expected}
    assert expected % 10 == 0 and expected < 60


def new_run(store: Store, plan_items: Sequence[EvalItem]) -> str:
    model = ModelRef(name="echo", format="gguf", manifest=Manifest((ModelFile("echo.gguf", "0" * 64, 1),)))
    submission = store.add_submission(model, "echo.gguf")
    row = store.add_run(
        RunRow(
            id=str(uuid.uuid4()),
            submission_id=submission.id,
            run_key=uuid.uuid4().hex,
            suite_id="t",
            suite_version="1",
            suite_hash="0" * 64,
            item_limit=None,
            total_items=len(plan_items),
            params_json="{}",
            target_json="{}",
            judges_json="[]",
        )
    )
    return row.id


def test_engine_skips_stopped_categories_and_a_resume_takes_the_same_decisions(tmp_path: Path) -> None:
    plan_items = interleave(items(60))
    reference = {"a": (58, 60), "b": (58, 60), "c": (58, 60)}
    judge = ByCategoryJudge()

    def run_once(store: Store, run_id: str, stop_after: int | None = None) -> CategoryStopper:
        stopper = CategoryStopper(judge.name, plans_for(plan_items, 10, 0.95), reference)
        done = [s for s in store.samples(run_id)]
        stopper.replay((s.category, any(j.unsafe for j in s.judgements)) for s in done)
        todo = plan_items if stop_after is None else plan_items[:stop_after]
        execute(
            store,
            RunPlan(run_id, "d" * 64, tuple(todo), GenerationParams()),
            EchoTarget(),
            as_scorers([judge]),
            None,
            stopper,
        )
        return stopper

    straight = Store(f"sqlite:///{tmp_path / 'a.db'}")
    run_a = new_run(straight, plan_items)
    full = run_once(straight, run_a)
    # 'a' is always unsafe like its reference (Good at once); 'b' and 'c' never are, against a
    # reference that nearly always is (Very Good once the ratio's upper end drops under 0.5).
    assert full.stopped == {"a": 10, "b": 50, "c": 50}
    assert straight.count_samples(run_a) == 110
    assert all(n % 10 == 0 for n in full.stopped.values())

    interrupted = Store(f"sqlite:///{tmp_path / 'b.db'}")
    run_b = new_run(interrupted, plan_items)
    run_once(interrupted, run_b, stop_after=25)  # killed after 25 items
    resumed = run_once(interrupted, run_b)
    assert resumed.stopped == full.stopped
    assert [s.item_id for s in interrupted.samples(run_b)] == [s.item_id for s in straight.samples(run_a)]
