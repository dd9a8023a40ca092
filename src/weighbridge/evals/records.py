"""The evaluation core's records: what is asked, what came back, and how it is counted.

Plain frozen data, no I/O, so every suite, solver, scorer and metric can be tested with values built
by hand. Shaped after inspect-ai's Sample/TaskState/Score split, with two differences that a safety
review needs: an item carries its provenance (source, licence, split, behaviour) because a report
must name where every prompt came from, and a metric says which direction is *worse*, because the
grades compare a model against references and "worse" is what a release decision turns on (an
unsafe rate is worse when higher, an accuracy or a refusal of a harmless request when the reverse).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Literal, Protocol

from weighbridge.domain import Category, ChatMessage, Generation, Judgement, canonical_json, sha256_text

Split = Literal["public", "heldout", "private"]
Worse = Literal["higher", "lower"]
#: What a target can do; a suite lists the ones it needs and a run refuses a target that lacks one.
Capability = Literal["chat", "logprobs", "tools", "weights", "batch"]
CAPABILITIES: tuple[Capability, ...] = ("chat", "logprobs", "tools", "weights", "batch")

#: A score is a judgement: a scorer's reading of one transcript (a label, a flag, a confidence).
Score = Judgement


def _frozen(mapping: Mapping[str, str] | None) -> Mapping[str, str]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class ToolSpec:
    """A tool offered to the model: its name, what it does, and its JSON-schema parameters."""

    name: str
    description: str
    parameters: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class EvalItem:
    """One test case: the conversation to send and what is known about it.

    `metadata` holds provenance (`source`, `licence`, `split`, `behaviour`) and anything a suite
    needs beside it; the properties below read the common keys so callers never spell them.
    """

    id: str
    category: str
    input: tuple[ChatMessage, ...]
    choices: tuple[str, ...] = ()
    target: str | None = None  # the expected answer, where there is one (a choice letter, a value)
    tools: tuple[ToolSpec, ...] = ()
    metadata: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        if not self.input:
            raise ValueError(f"item {self.id!r} has no input messages")
        object.__setattr__(self, "metadata", _frozen(self.metadata))

    @classmethod
    def ask(
        cls,
        id: str,  # the record's field name
        category: str,
        prompt: str,
        *,
        source: str = "",
        licence: str = "",
        split: Split = "public",
        behaviour: str = "enable",
        **metadata: str,
    ) -> EvalItem:
        """A single user request, the shape of most safety items."""
        meta = {"source": source, "licence": licence, "split": split, "behaviour": behaviour, **metadata}
        return cls(id=id, category=category, input=(ChatMessage("user", prompt),), metadata=meta)

    @property
    def prompt(self) -> str:
        """The last user message: what judges read as the request."""
        return next((m.content for m in reversed(self.input) if m.role == "user"), self.input[-1].content)

    @property
    def source(self) -> str:
        return self.metadata.get("source", "")

    @property
    def licence(self) -> str:
        return self.metadata.get("licence", "")

    @property
    def split(self) -> str:
        return self.metadata.get("split", "public")

    @property
    def behaviour(self) -> str:
        return self.metadata.get("behaviour", "enable")

    def digest_record(self) -> dict[str, Any]:
        """The item as it is hashed into its suite's digest.

        A plain single-request item hashes in the flat form every earlier run recorded (id,
        category, prompt, source, licence, split, behaviour), so stored runs and reports keep their
        suite digest; richer items add their conversation, choices, target and tools.
        """
        base: dict[str, Any] = {
            "id": self.id,
            "category": self.category,
            "prompt": self.prompt,
            "source": self.source,
            "licence": self.licence,
            "split": self.split,
            "behaviour": self.behaviour,
        }
        plain = len(self.input) == 1 and self.input[0].role == "user" and not (self.choices or self.tools)
        extra = {k: v for k, v in self.metadata.items() if k not in {"source", "licence", "split", "behaviour"}}
        if plain and self.target is None and not extra:
            return base
        base |= {
            "input": [[m.role, m.content] for m in self.input],
            "choices": list(self.choices),
            "target": self.target,
            "tools": [[t.name, t.description, dict(t.parameters)] for t in self.tools],
            "metadata": extra,
        }
        return base


def items_digest(items: Sequence[EvalItem]) -> str:
    """Digest of the exact items, so a report names what was asked, not just a version label."""
    return sha256_text(canonical_json([i.digest_record() for i in items]))


@dataclass(frozen=True)
class Transcript:
    """What happened to one item: the whole conversation and every generation that made it."""

    item_id: str
    messages: tuple[ChatMessage, ...]
    generations: tuple[Generation, ...]

    @property
    def answer(self) -> Generation:
        """The last generation: what scorers read."""
        return self.generations[-1]


class Labelled(Protocol):
    """What a metric reads of a score (a `Judgement`, or one read back from a store)."""

    @property
    def label(self) -> str: ...

    @property
    def unsafe(self) -> bool: ...


@dataclass(frozen=True)
class Metric:
    """A rate over items, read from one scorer's scores, and which direction of it is worse.

    An item counts when its score's label is one of `labels`; with no labels it counts when the
    score is flagged (`Judgement.unsafe`, the harm reading a primary judge gives). The rate is
    graded against the references in the `worse` direction.
    """

    name: str
    scorer: str
    worse: Worse = "higher"
    labels: frozenset[str] = frozenset()
    title: str = ""

    def counts(self, score: Labelled) -> bool:
        return score.label in self.labels if self.labels else score.unsafe


@dataclass(frozen=True)
class SuiteSpec:
    """A named, versioned set of items and how to answer and score them.

    `items` is a function so that a registry lists suites without reading their data; `solver`
    and `scorers` name registered components (the run builds them), which keeps a spec plain data
    that a run's identity and a report can record.
    """

    id: str
    version: str
    title: str
    categories: tuple[Category, ...]
    items: Callable[[], Sequence[EvalItem]]
    metrics: tuple[Metric, ...]
    solver: str = "plain"
    scorers: tuple[str, ...] = ()
    requires: frozenset[Capability] = frozenset({"chat"})
    source: str = ""
    licence: str = ""
    #: Whether a report may print the items (a private held-out suite is named by digest only).
    public: bool = True

    def load(self) -> Suite:
        """The suite with its items read (and validated by the suite's own loader)."""
        return Suite(
            id=self.id,
            version=self.version,
            title=self.title,
            categories=self.categories,
            items=tuple(self.items()),
            metrics=self.metrics,
            source=self.source,
            licence=self.licence,
            public=self.public,
            solver=self.solver,
            scorers=self.scorers,
        )


@dataclass(frozen=True)
class Suite:
    """A suite with its items in hand: what a run asks and a report describes."""

    id: str
    version: str
    title: str
    categories: tuple[Category, ...]
    items: tuple[EvalItem, ...]
    metrics: tuple[Metric, ...] = ()
    source: str = ""
    licence: str = ""
    public: bool = True
    solver: str = "plain"
    scorers: tuple[str, ...] = ()  # for a suite graded on its own scorers rather than the judges

    @property
    def content_hash(self) -> str:
        return items_digest(self.items)

    @property
    def primary(self) -> Metric | None:
        """The metric the suite is graded on (the first)."""
        return self.metrics[0] if self.metrics else None

    def category(self, category_id: str) -> Category:
        """The category record, or a bare one for a user's own category id."""
        return next((c for c in self.categories if c.id == category_id), Category(category_id, category_id))

    def limited(self, per_category: int | None) -> Suite:
        """The first N items of every category, so a smoke run still covers every category."""
        if per_category is None:
            return self
        counts: dict[str, int] = {}
        kept: list[EvalItem] = []
        for item in self.items:
            seen = counts.get(item.category, 0)
            if seen < per_category:
                kept.append(item)
                counts[item.category] = seen + 1
        return replace(self, items=tuple(kept))


@dataclass(frozen=True)
class TargetOptions:
    """How to open a model as a target; the settings that change answers also appear in the
    target's `describe()` (and so in the run's identity)."""

    n_threads: int | None = None
    batch_size: int | None = None  # None: the target kind's default for a review
    device: str = "cpu"  # "cpu", "cuda", "cuda:1" (transformers, vLLM)
    gpu_layers: int = 0  # llama.cpp layers offloaded to the GPU; -1 offloads all
    n_ctx: int | None = None  # None: the model's own context length
    dtype: str = "auto"  # transformers/vLLM weights dtype
    engine: str | None = None  # a registered target kind to use instead of the format's default
    chat_template: str | None = None  # a template override (references pinned without one)
    stop: tuple[str, ...] = ()
