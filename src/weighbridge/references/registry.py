"""Named references: register once, pinned by digest and chat format, reused by every review.

A reference name stands for *one* model (its manifest digest) asked *one* way (its chat format).
Registering a name again with other bytes or another format is refused: results stored under a
name must keep meaning what they meant. The built-in `gemma-3-270m` registers itself on first use.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from importlib.util import find_spec
from pathlib import Path

from sqlalchemy import select

from weighbridge.domain import ModelRef
from weighbridge.errors import WeighbridgeError
from weighbridge.evals.records import TargetOptions
from weighbridge.intake.resolve import resolve_model
from weighbridge.references.formats import PLAIN_DIALOGUE, ChatFormat, load_format
from weighbridge.services import audit
from weighbridge.store.db import Store
from weighbridge.store.reference_schema import ReferenceRow
from weighbridge.targets.base import Target

# "model": the GGUF's own chat template (instruct models); any other value names a format shipped
# under references/templates/ or a .jinja file of the reviewer's.
MODEL_TEMPLATE = "model"
_NAME_OK = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-._")


@dataclass(frozen=True)
class Builtin:
    title: str
    locate: Callable[[], Path]  # the model file, assembled/verified on first use
    installed: Callable[[], bool]  # cheap: are its packages there (nothing read or written)
    chat_format: str


def _gemma_path() -> Path:
    from weighbridge.references.gemma import gemma_reference_path

    return gemma_reference_path()


def _gemma_installed() -> bool:
    from weighbridge.references.gemma import GEMMA_3_270M

    packages = [GEMMA_3_270M.sums_package, *(p.package for p in GEMMA_3_270M.parts)]
    return all(find_spec(p) is not None for p in packages)


BUILTINS: dict[str, Builtin] = {
    "gemma-3-270m": Builtin(
        "Gemma-3-270m base (no safety training), plain-dialogue format",
        _gemma_path,
        _gemma_installed,
        "plain-dialogue",
    ),
}
DEFAULT_REFERENCE = "gemma-3-270m"


@dataclass(frozen=True)
class Reference:
    name: str
    title: str
    kind: str  # gguf | endpoint | builtin
    source: str
    digest: str
    chat_format: str
    submission_id: str


def _of(row: ReferenceRow) -> Reference:
    return Reference(row.name, row.title, row.kind, row.source, row.digest, row.chat_format, row.submission_id)


def builtin_available(name: str = DEFAULT_REFERENCE) -> bool:
    """Whether a built-in reference's packages are installed (it is never downloaded). Reads and
    writes nothing: a broken install is reported when the reference is first used."""
    builtin = BUILTINS.get(name)
    return builtin is not None and builtin.installed()


def chat_format_of(spec: str) -> ChatFormat | None:
    """The explicit format a spec names; None for the model's own template."""
    if spec == MODEL_TEMPLATE:
        return None
    path = Path(spec)
    if path.suffix == ".jinja":
        if not path.is_file():
            raise WeighbridgeError(f"No chat format file {spec}", "Give an existing .jinja file, or 'plain-dialogue'")
        return ChatFormat(name=path.stem, template=path.read_text(encoding="utf-8"))
    if spec == PLAIN_DIALOGUE.name:
        return PLAIN_DIALOGUE
    try:
        return load_format(spec)
    except FileNotFoundError:
        raise WeighbridgeError(
            f"Unknown chat format '{spec}'", "Use 'model', 'plain-dialogue' or the path of a .jinja template"
        ) from None


def _check_name(name: str) -> None:
    if not name or len(name) > 64 or not set(name) <= _NAME_OK:
        raise WeighbridgeError(
            f"'{name}' is not a valid reference name",
            "Use up to 64 lower-case letters, digits, '-', '.' or '_' (e.g. 'acme-7b-v1')",
        )


def find(store: Store, name: str) -> Reference | None:
    with store.session() as s:
        row = s.get(ReferenceRow, name)
        return _of(row) if row is not None else None


def list_references(store: Store) -> list[Reference]:
    with store.session() as s:
        return [_of(r) for r in s.scalars(select(ReferenceRow).order_by(ReferenceRow.name))]


def is_reference_submission(store: Store, submission_id: str) -> bool:
    with store.session() as s:
        return s.scalar(select(ReferenceRow.name).where(ReferenceRow.submission_id == submission_id)) is not None


def register(
    store: Store, name: str, source: str, *, title: str | None = None, chat_format: str = MODEL_TEMPLATE
) -> Reference:
    """Pin `name` to the model at `source` asked through `chat_format`.

    Re-registering the same name with the same digest and format returns the existing reference;
    anything else under a taken name is refused, so stored results never change meaning.
    """
    _check_name(name)
    model = resolve_model(source)
    if model.format not in ("gguf", "endpoint"):
        raise WeighbridgeError(
            f"{source} is a {model.format} model; references are asked through llama.cpp (GGUF) or an endpoint",
            "Convert it to GGUF (llama.cpp's convert_hf_to_gguf.py) or serve it with vLLM / llama.cpp server "
            "and register its model.yaml",
        )
    if model.format == "endpoint" and chat_format != MODEL_TEMPLATE:
        raise WeighbridgeError("An endpoint applies its own chat template", "Leave --chat-format at 'model'")
    chat_format_of(chat_format)  # unknown format: fail before storing
    kind = "builtin" if source.startswith("builtin:") else model.format
    return _pin(store, name, model, source, title or model.name, chat_format, kind)


def _pin(store: Store, name: str, model: ModelRef, source: str, title: str, chat_format: str, kind: str) -> Reference:
    existing = find(store, name)
    if existing is not None:
        if existing.digest != model.digest or existing.chat_format != chat_format:
            raise WeighbridgeError(
                f"Reference '{name}' is already pinned to digest {existing.digest[:12]} with format "
                f"'{existing.chat_format}' (given: {model.digest[:12]}, '{chat_format}')",
                "Register the new model under a new name (e.g. NAME-v2); a pinned reference never changes",
            )
        return existing
    submission = store.add_submission(model, source)
    audit.record(
        store,
        "reference.register",
        name,
        {"digest": model.digest, "source": source, "chat_format": chat_format, "submission": submission.id},
    )
    with store.session() as s:
        s.add(
            ReferenceRow(
                name=name,
                title=title,
                kind=kind,
                source=source,
                digest=model.digest,
                chat_format=chat_format,
                submission_id=submission.id,
            )
        )
    found = find(store, name)
    assert found is not None
    return found


def get(store: Store, name: str) -> Reference:
    """A registered reference, registering a built-in one on first use."""
    ref = find(store, name)
    if ref is not None:
        return ref
    builtin = BUILTINS.get(name)
    if builtin is None:
        known = sorted({*BUILTINS, *(r.name for r in list_references(store))})
        raise WeighbridgeError(
            f"No reference named '{name}'",
            f"Register it with 'weighbridge reference add {name} PATH' or choose one of: {', '.join(known)}",
        )
    path = builtin.locate()
    model = resolve_model(str(path))
    return _pin(store, name, model, f"builtin:{name}", builtin.title, builtin.chat_format, "builtin")


def reference_model(ref: Reference) -> ModelRef:
    """The reference's model as it is now, refused if its bytes differ from the pinned digest."""
    source = str(BUILTINS[ref.name].locate()) if ref.kind == "builtin" else ref.source
    model = resolve_model(source)
    if model.digest != ref.digest:
        raise WeighbridgeError(
            f"Reference '{ref.name}' is pinned to digest {ref.digest[:12]} but {source} now has {model.digest[:12]}",
            "Restore the pinned files, or register the new ones under a new reference name",
        )
    return model


def open_reference_target(
    ref: Reference,
    model: ModelRef,
    n_threads: int | None = None,
    batch_size: int | None = None,
    *,
    gpu_layers: int = 0,
) -> Target:
    """The reference as the one factory opens it, asked through its pinned chat format."""
    from weighbridge.targets.factory import open_target

    fmt = chat_format_of(ref.chat_format)
    options = TargetOptions(n_threads=n_threads, batch_size=batch_size, gpu_layers=gpu_layers)
    if fmt is not None:
        options = replace(options, chat_template=fmt.template, stop=tuple(fmt.stop))
    return open_target(model, options)
