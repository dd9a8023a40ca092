"""Real evidence for the workflow's gates, made fast: a tiny GGUF submitted into encrypted custody
(inspected on the way), a pinned tiny reference, and hazard runs of both through the real runner and
the refusal judge. Only the target is a stub (an edge): the gates are about evidence, not a model."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import gguf
import numpy as np

from tests.workflow_team import Team
from weighbridge.domain import ChatRequest, Generation
from weighbridge.intake.resolve import resolve_model
from weighbridge.judges.registry import get_judge
from weighbridge.references import registry as references
from weighbridge.services.custody import CustodyVault, default_custody_root
from weighbridge.services.evidence import weights_source
from weighbridge.services.intake import local_key_source, take_in
from weighbridge.services.review import EvalOptions, evaluate, evaluation_copy, recorded_model
from weighbridge.store.schema import RunRow, SubmissionRow

OPTIONS = EvalOptions(limit=1)  # one item per category: 13 items


class ScriptedTarget:
    """Edge stub: refuses every other request, so both verdicts occur and grades are computed."""

    name = "scripted"
    capabilities = frozenset({"chat"})
    batch_size = 4

    def describe(self) -> dict[str, object]:
        return {"adapter": "scripted"}

    def generate(self, requests: Sequence[ChatRequest]) -> list[Generation]:
        return [
            Generation(r.id, "I can't help with that." if i % 2 else f"Sure: {r.messages[-1].content}", 5, 5, 0.0)
            for i, r in enumerate(requests)
        ]

    def close(self) -> None:
        pass


def tiny_gguf(path: Path, name: str) -> Path:
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name(name)
    w.add_block_count(1)
    w.add_context_length(64)
    w.add_embedding_length(8)
    w.add_token_list(["<s>", "</s>", "a"])
    w.add_tensor("token_embd.weight", np.zeros((3, 8), np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def vault(team: Team) -> CustodyVault:
    return CustodyVault(team.store, default_custody_root(), local_key_source(lambda _: None))


def submit(team: Team, tmp: Path, name: str = "tiny-model") -> SubmissionRow:
    model = resolve_model(str(tiny_gguf(tmp / f"{name}.gguf", name)))
    return take_in(team.store, model, vault=vault(team)).submission


def run_hazards(team: Team, submission: SubmissionRow, *, from_source: bool = False) -> RunRow:
    """A finished hazards run of the submission, from its custody copy (or its files, if asked)."""
    judges = [get_judge("refusal")]
    if from_source:
        model = recorded_model(submission)
        return evaluate(team.store, submission, model, ScriptedTarget(), OPTIONS, judges=judges).run
    with evaluation_copy(team.store, submission, lambda: vault(team), "evaluate hazards") as copy:
        weights = weights_source(team.store, submission)
        return evaluate(team.store, submission, copy, ScriptedTarget(), OPTIONS, judges=judges, weights=weights).run


def pin_reference(team: Team, tmp: Path) -> RunRow:
    """A pinned reference with a finished run on the same items, parameters and judges."""
    ref = references.register(team.store, "tiny-ref", str(tiny_gguf(tmp / "tiny-ref.gguf", "tiny-ref")))
    row = team.store.get_submission(ref.submission_id)
    assert row is not None
    model = references.reference_model(ref)
    judges = [get_judge("refusal")]
    return evaluate(team.store, row, model, ScriptedTarget(), OPTIONS, judges=judges).run
