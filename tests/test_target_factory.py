"""The one target factory: which kind opens which model, what the options change, its refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.evidence_fixture import tiny_gguf
from tests.hf_fixtures import build_tiny_hf
from weighbridge.domain import EndpointSpec, Manifest, ModelRef
from weighbridge.errors import WeighbridgeError
from weighbridge.evals.records import TargetOptions
from weighbridge.evals.registry import targets
from weighbridge.intake.resolve import resolve_model
from weighbridge.targets.factory import can_open, kind_for, open_target
from weighbridge.targets.hf import HFTarget
from weighbridge.targets.llamacpp import DEFAULT_N_CTX, LlamaCppTarget, default_context, trained_context


def ref(fmt: str, path: str | None = "/nowhere", endpoint: EndpointSpec | None = None) -> ModelRef:
    return ModelRef(name="m", format=fmt, manifest=Manifest(()), path=path, endpoint=endpoint)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def hf_model(tmp_path_factory: pytest.TempPathFactory) -> ModelRef:
    return resolve_model(str(build_tiny_hf(tmp_path_factory.mktemp("factory") / "tiny-llama")))


def test_builtin_kinds_are_registered_in_order() -> None:
    assert targets.names_in_order()[:3] == ["llamacpp", "hf", "openai"]


def test_each_format_goes_to_its_kind(hf_model: ModelRef) -> None:
    assert kind_for(ref("gguf"), TargetOptions()).name == "llamacpp"
    assert hf_model.format == "hf" and kind_for(hf_model, TargetOptions()).name == "hf"
    endpoint = EndpointSpec(base_url="http://127.0.0.1:9/v1", model="x")
    assert kind_for(ref("endpoint", None, endpoint), TargetOptions()).name == "openai"


def test_a_model_no_kind_opens_is_refused_naming_the_kinds(tmp_path: Path) -> None:
    pickled = tmp_path / "pickled"  # config.json beside pickled weights: inspected, never loaded
    pickled.mkdir()
    (pickled / "config.json").write_text("{}")
    (pickled / "pytorch_model.bin").write_bytes(b"\x80\x04N.")
    assert resolve_model(str(pickled)).format == "hf"
    for model in [ref("safetensors"), ref("pickle"), ref("directory"), resolve_model(str(pickled))]:
        with pytest.raises(WeighbridgeError, match="No target kind can evaluate") as caught:
            kind_for(model, TargetOptions())
        assert "llamacpp, " in caught.value.fix and "convert" in caught.value.fix
        assert not can_open(model)


def test_an_engine_is_used_when_named_and_refused_when_it_cannot(hf_model: ModelRef) -> None:
    assert kind_for(hf_model, TargetOptions(engine="hf")).name == "hf"
    with pytest.raises(WeighbridgeError, match="Unknown target 'vllm-nope'") as unknown:
        kind_for(hf_model, TargetOptions(engine="vllm-nope"))
    assert "hf" in unknown.value.fix and "llamacpp" in unknown.value.fix
    with pytest.raises(WeighbridgeError, match="'hf' target cannot open") as wrong:
        kind_for(ref("gguf"), TargetOptions(engine="hf"))
    assert "llamacpp" in wrong.value.fix


def test_a_registered_kind_takes_precedence_by_order(tmp_path: Path) -> None:
    """A plugin kind registered later is asked after the built-ins, and only chosen when named."""

    class Shadow:
        name = "shadow"

        def accepts(self, model: ModelRef) -> bool:
            return True

        def open(self, model: ModelRef, options: TargetOptions) -> HFTarget:
            raise AssertionError("never opened")

    targets.register("shadow")(Shadow)
    try:
        assert kind_for(ref("gguf"), TargetOptions()).name == "llamacpp"
        assert kind_for(ref("safetensors"), TargetOptions()).name == "shadow"
        assert kind_for(ref("gguf"), TargetOptions(engine="shadow")).name == "shadow"
    finally:
        targets.unregister("shadow")


def test_a_hugging_face_directory_opens_through_transformers(hf_model: ModelRef) -> None:
    target = open_target(hf_model, TargetOptions(n_threads=1))
    try:
        assert isinstance(target, HFTarget)
        assert target.describe()["model"] == "tiny-llama" and target.batch_size == 8  # the review's default
    finally:
        target.close()


def test_review_open_target_is_the_factory(hf_model: ModelRef) -> None:
    from weighbridge.services.review import open_target as review_open

    target = review_open(hf_model, 1, batch_size=3, options=TargetOptions(dtype="bfloat16"))
    try:
        assert isinstance(target, HFTarget)
        assert target.batch_size == 3 and target.describe()["dtype"] == "bfloat16"
    finally:
        target.close()


def test_llamacpp_default_identity_is_unchanged(default_model_path: Path) -> None:
    """The default review's target description is what it was before the options existed: the
    runs and cache keys of earlier reviews stay valid."""
    model = resolve_model(str(default_model_path))
    target = open_target(model, TargetOptions(n_threads=2))
    try:
        assert isinstance(target, LlamaCppTarget)
        described = target.describe()
        assert set(described) == {"adapter", "model", "n_ctx", "build", "chat_template", "batch_size"}
        assert described["n_ctx"] == 2048 and described["batch_size"] == 8 and described["chat_template"] == "gguf"
    finally:
        target.close()


def test_llamacpp_options_enter_the_identity_only_when_set(default_model_path: Path) -> None:
    model = resolve_model(str(default_model_path))
    target = open_target(model, TargetOptions(n_threads=2, n_ctx=4096, gpu_layers=-1, batch_size=1))
    try:
        described = target.describe()
        # A CPU build of llama.cpp ignores the offload; the identity still records that it was asked.
        assert described["n_ctx"] == 4096 and described["gpu_layers"] == -1 and "batch_size" not in described
    finally:
        target.close()
    with pytest.raises(WeighbridgeError, match="gpu_layers must be -1"):
        LlamaCppTarget(default_model_path, gpu_layers=-2)


def test_the_default_context_is_the_model_own_capped(default_model_path: Path, tmp_path: Path) -> None:
    assert trained_context(default_model_path) == 8192
    assert default_context(default_model_path) == DEFAULT_N_CTX == 2048
    assert default_context(tiny_gguf(tmp_path / "short.gguf", "short")) == 64  # declares 64
    (tmp_path / "junk.gguf").write_bytes(b"GGUF" + b"\0" * 8)
    assert trained_context(tmp_path / "junk.gguf") is None and default_context(tmp_path / "junk.gguf") == 2048
