"""Plain records shared by every layer.

These carry data between the core (suites, judges, grading), the services (runner, review) and the
edges (CLI, store, reports). They hold no behaviour that touches the outside world, so every core
function can be tested with values built by hand.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Literal

# gguf: one GGUF file; safetensors: one safetensors file; hf: a Hugging Face model directory;
# directory: any other directory (scanned, e.g. pickle checkpoints); pickle: one pickle-based file
# (scanned, never loaded); endpoint: an OpenAI-compatible server.
ModelFormat = Literal["gguf", "safetensors", "hf", "directory", "pickle", "endpoint"]
Severity = Literal["info", "low", "medium", "high", "critical"]
Role = Literal["system", "user", "assistant"]


def canonical_json(value: object) -> str:
    """Stable JSON text: the same value always hashes the same, whatever dict order produced it."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    content: str


@dataclass(frozen=True)
class GenerationParams:
    """Sampling settings. Greedy with a fixed seed by default, so that a review is reproducible on
    the same llama.cpp build and batch size; across builds it can move (docs/reproducibility.md)."""

    max_tokens: int = 128
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0
    # llama.cpp's server defaults to 1.1 while the in-process API defaults to 1.0: always send it.
    repeat_penalty: float = 1.0

    def key(self) -> str:
        return canonical_json(asdict(self))


@dataclass(frozen=True)
class ChatRequest:
    id: str
    messages: tuple[ChatMessage, ...]
    params: GenerationParams = field(default_factory=GenerationParams)


@dataclass(frozen=True)
class Generation:
    """What a target answered to one request, with what it cost."""

    request_id: str
    text: str
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    finish_reason: str = "stop"
    cached: bool = False


@dataclass(frozen=True)
class ModelFile:
    path: str
    sha256: str
    bytes: int


@dataclass(frozen=True)
class Manifest:
    """What exactly was reviewed: one digest per file and one digest over all of them."""

    files: tuple[ModelFile, ...]

    @property
    def digest(self) -> str:
        lines = "".join(f"{f.path}\0{f.sha256}\0{f.bytes}\n" for f in sorted(self.files, key=lambda f: f.path))
        return sha256_text(lines)


@dataclass(frozen=True)
class EndpointSpec:
    """An OpenAI-compatible server (vLLM, llama-server, a hosted API)."""

    base_url: str
    model: str
    api_key_env: str | None = None
    timeout_s: float = 120.0
    concurrency: int = 4
    # Send llama.cpp/vLLM sampling fields (repeat penalty) that strict OpenAI APIs reject.
    sampling_extensions: bool = True


@dataclass(frozen=True)
class ModelRef:
    """A model as the user named it, resolved and fingerprinted but not loaded."""

    name: str
    format: ModelFormat
    manifest: Manifest
    path: str | None = None
    endpoint: EndpointSpec | None = None

    @property
    def digest(self) -> str:
        if self.endpoint is not None:
            # An endpoint has no files to hash; its identity is where it is and what it serves.
            return sha256_text(canonical_json({"base_url": self.endpoint.base_url, "model": self.endpoint.model}))
        return self.manifest.digest


@dataclass(frozen=True)
class Category:
    id: str
    name: str
    description: str = ""


@dataclass(frozen=True)
class Judgement:
    """A judge's reading of one response."""

    judge: str
    judge_version: str
    label: str  # e.g. "refused" / "complied"
    unsafe: bool
    confidence: float
    rationale: str = ""
    score: float | None = None  # a graded reading in [0, 1] where the judge has one


@dataclass(frozen=True)
class Sample:
    """One finished item of a run: the prompt, the answer and the verdicts on it."""

    item_id: str
    category: str
    prompt: str
    generation: Generation
    judgements: tuple[Judgement, ...]


@dataclass(frozen=True)
class CategoryResult:
    id: str
    name: str
    n: int
    unsafe: int
    unsafe_rate: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class RunStats:
    """What one invocation of a run cost and where its samples came from."""

    seconds: float
    samples: int
    tokens_generated: int
    generated: int  # samples the target produced during this invocation
    cache_hits: int  # samples answered from the response cache
    resumed: int  # samples kept from an interrupted earlier attempt of the same run


@dataclass(frozen=True)
class Finding:
    """Something a reviewer should know, found by inspection or evaluation.

    `kind` is a stable machine name (e.g. "pickle.dangerous_global", "card.missing_section");
    `location` pinpoints it inside `file` (a tensor name, a byte offset, a metadata key, a line).
    """

    kind: str
    severity: Severity
    message: str
    file: str | None = None
    location: str | None = None
    evidence: str | None = None
