"""Named references: pinned by digest and chat format, evaluated once, reused afterwards."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from weighbridge.domain import GenerationParams
from weighbridge.errors import WeighbridgeError
from weighbridge.judges.refusal import RefusalJudge
from weighbridge.references import registry
from weighbridge.services.review import EvalOptions, evaluate_reference
from weighbridge.store.db import Store


@pytest.fixture()
def store(tmp_path: Path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'wb.db'}")


def test_register_pins_digest_and_format(store: Store, default_model_path: Path) -> None:
    ref = registry.register(store, "smol-ref", str(default_model_path), title="SmolLM2 as shipped")
    assert ref.kind == "gguf" and ref.chat_format == "model" and len(ref.digest) == 64
    assert registry.register(store, "smol-ref", str(default_model_path), title="again") == ref
    with pytest.raises(WeighbridgeError, match="already pinned"):
        registry.register(store, "smol-ref", str(default_model_path), chat_format="plain-dialogue")
    assert [r.name for r in registry.list_references(store)] == ["smol-ref"]
    assert registry.is_reference_submission(store, ref.submission_id)


@pytest.mark.parametrize("name", ["", "Has Caps", "x" * 65, "semi;colon"])
def test_bad_names_are_refused(store: Store, default_model_path: Path, name: str) -> None:
    with pytest.raises(WeighbridgeError, match="not a valid reference name"):
        registry.register(store, name, str(default_model_path))


def test_unknown_reference_says_how_to_register(store: Store) -> None:
    with pytest.raises(WeighbridgeError) as info:
        registry.get(store, "nope")
    assert "weighbridge reference add nope PATH" in info.value.message
    assert "gemma-3-270m" in info.value.message


def test_unknown_chat_format_is_refused_before_storing(store: Store, default_model_path: Path) -> None:
    with pytest.raises(WeighbridgeError, match="Unknown chat format"):
        registry.register(store, "x", str(default_model_path), chat_format="klingon")
    assert registry.list_references(store) == []


def test_changed_reference_files_are_refused(store: Store, default_model_path: Path, tmp_path: Path) -> None:
    copy = tmp_path / "ref.gguf"
    shutil.copyfile(default_model_path, copy)
    ref = registry.register(store, "copy", str(copy))
    with copy.open("r+b") as handle:
        handle.seek(-1, 2)
        last = handle.read(1)
        handle.seek(-1, 2)
        handle.write(bytes([last[0] ^ 1]))
    with pytest.raises(WeighbridgeError, match="pinned to digest"):
        registry.reference_model(ref)


def test_builtin_gemma_registers_itself(store: Store) -> None:
    if not registry.builtin_available("gemma-3-270m"):
        pytest.fail("scripts/setup.sh installs the Gemma reference packages; they are missing")
    ref = registry.get(store, "gemma-3-270m")
    assert ref.kind == "builtin" and ref.chat_format == "plain-dialogue"
    assert registry.get(store, "gemma-3-270m") == ref


def test_reference_results_are_stored_then_reused(store: Store, default_model_path: Path) -> None:
    registry.register(store, "smol-ref", str(default_model_path))
    options = EvalOptions(limit=1, params=GenerationParams(max_tokens=4), n_threads=1)
    judges = [RefusalJudge()]
    first = evaluate_reference(store, "smol-ref", options, judges)
    assert not first.info.reused and first.run.status == "finished"
    assert sum(n for _, n in first.counts.values()) == 13  # one item per category
    again = evaluate_reference(store, "smol-ref", options, judges)
    assert again.info.reused and again.run.id == first.run.id and again.counts == first.counts
    other_params = EvalOptions(limit=1, params=GenerationParams(max_tokens=5), n_threads=1)
    assert not evaluate_reference(store, "smol-ref", other_params, judges).info.reused
