"""Reference models: pinned targets whose results stand for "the risk that already exists".

Public surface: `gemma_reference_path()` / `open_gemma_reference()` for the optional Gemma-3-270m
base model, and the `ChatFormat` records (`PLAIN_DIALOGUE`) that let a model without a chat
template be reviewed through a chat interface. See docs/references.md.
"""

from weighbridge.references.formats import PLAIN_DIALOGUE, ChatFormat, load_format
from weighbridge.references.gemma import GEMMA_3_270M, gemma_reference_path, open_gemma_reference
from weighbridge.references.split import Part, SplitModel

__all__ = [
    "GEMMA_3_270M",
    "PLAIN_DIALOGUE",
    "ChatFormat",
    "Part",
    "SplitModel",
    "gemma_reference_path",
    "load_format",
    "open_gemma_reference",
]
