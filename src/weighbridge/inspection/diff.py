"""Layer-by-layer comparison of a model with its declared base: what did the fine-tune change?

A lab that calls a model "the base model, lightly instruction-tuned" can be checked: tensors that
moved far, or only in a few blocks, reveal an undisclosed fine-tune or a merged adapter (a LoRA
merge moves exactly the attention projections it targeted). The comparison is the relative change
‖A−B‖ / ‖B‖ per tensor, after dequantising, so a Q4 GGUF can be compared with a Q4 or F16 one.

Memory is bounded by one tensor per side: tensors are read one name at a time (safetensors via
`safe_open`, GGUF via gguf's memory-mapped reader), the norms are accumulated in float64 over
slices, and nothing is kept but the numbers. Two 70B models can be compared on a laptop.
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from weighbridge.domain import Finding
from weighbridge.errors import WeighbridgeError

CHANGE_TOLERANCE = 1e-6  # relative change below this is float noise (or identical bytes)
_CHUNK_ELEMENTS = 1 << 24  # float64 scratch per slice: 128 MB at most
_MAX_LISTED = 10
_LAYER = re.compile(r"(?:^|\.)(?:blk|layers|h|block|blocks|layer)\.(\d+)\.")


@dataclass(frozen=True)
class TensorChange:
    """One tensor present on both sides with the same shape."""

    name: str
    shape: tuple[int, ...]
    relative_change: float  # ‖A−B‖/‖B‖; inf when B is all zeros and A is not


@dataclass(frozen=True)
class LayerDiff:
    """The outcome of comparing `model` with `base`, tensor by tensor."""

    model: str
    base: str
    format: str
    compared: tuple[TensorChange, ...]
    only_in_model: tuple[str, ...]
    only_in_base: tuple[str, ...]
    shape_mismatches: tuple[tuple[str, tuple[int, ...], tuple[int, ...]], ...]  # name, model shape, base shape
    skipped: tuple[tuple[str, str], ...] = ()  # name, why (e.g. an unsupported dtype)
    tolerance: float = CHANGE_TOLERANCE

    @property
    def changed(self) -> tuple[TensorChange, ...]:
        """Tensors that moved by more than the tolerance, largest change first."""
        moved = [c for c in self.compared if c.relative_change > self.tolerance]
        return tuple(sorted(moved, key=lambda c: (-c.relative_change, c.name)))

    @property
    def total(self) -> int:
        return len(self.compared) + len(self.only_in_model) + len(self.only_in_base) + len(self.shape_mismatches)

    @property
    def changed_layers(self) -> tuple[int, ...]:
        """Block indices (blk.N / model.layers.N) holding at least one changed tensor."""
        found = {int(m.group(1)) for c in self.changed if (m := _LAYER.search(c.name)) is not None}
        return tuple(sorted(found))

    @property
    def aligned(self) -> bool:
        return not (self.only_in_model or self.only_in_base or self.shape_mismatches)


class _Side(Protocol):
    """One model's tensors, readable one at a time."""

    def shapes(self) -> dict[str, tuple[int, ...]]: ...

    def chunks(self, name: str) -> Iterator[npt.NDArray[Any]]: ...

    def stored(self, name: str) -> tuple[str, npt.NDArray[Any]] | None:
        """The tensor's storage type and bytes as stored, when cheap to get (for the identical-bytes shortcut)."""


def diff_layers(model: Path, base: Path, *, tolerance: float = CHANGE_TOLERANCE) -> LayerDiff:
    """Compare `model` with `base` tensor by tensor.

    Args:
        model: the submitted weights: a .gguf file, a .safetensors file, or a directory of
            safetensors shards (Hugging Face layout).
        base: the declared base model, in the same format family.
        tolerance: relative change at or below which a tensor counts as unchanged.

    Raises:
        WeighbridgeError: when either side cannot be read, or one is GGUF and the other
            safetensors (their tensor names and layouts differ; convert one side first).
    """
    model_kind, base_kind = _kind(model), _kind(base)
    if model_kind != base_kind:
        raise WeighbridgeError(
            f"Cannot diff a {model_kind} model against a {base_kind} base: tensor names and layouts differ",
            "Give a base in the same format (convert one side with llama.cpp's convert_hf_to_gguf.py)",
        )
    with ExitStack() as stack:
        a: _Side
        b: _Side
        if model_kind == "gguf":
            a = _GGUFSide(model)
            # Parsing a GGUF header walks the whole vocabulary (seconds): read the same file once.
            b = a if model.resolve() == base.resolve() else _GGUFSide(base)
        else:
            a = _SafetensorsSide(_shards(model), stack)
            b = _SafetensorsSide(_shards(base), stack)
        shapes_a, shapes_b = a.shapes(), b.shapes()
        compared: list[TensorChange] = []
        mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = []
        skipped: list[tuple[str, str]] = []
        for name in sorted(shapes_a.keys() & shapes_b.keys()):
            if shapes_a[name] != shapes_b[name]:
                mismatched.append((name, shapes_a[name], shapes_b[name]))
                continue
            stored_a, stored_b = a.stored(name), b.stored(name)
            if (
                stored_a is not None
                and stored_b is not None
                and stored_a[0] == stored_b[0]
                and np.array_equal(stored_a[1], stored_b[1])
            ):
                # Same quantisation, same bytes: unchanged, and no need to dequantise.
                compared.append(TensorChange(name, shapes_a[name], 0.0))
                continue
            try:
                change = _relative_change(a.chunks(name), b.chunks(name))
            except _Unsupported as exc:
                skipped.append((name, str(exc)))
                continue
            compared.append(TensorChange(name, shapes_a[name], change))
        return LayerDiff(
            model=str(model),
            base=str(base),
            format=model_kind,
            compared=tuple(compared),
            only_in_model=tuple(sorted(shapes_a.keys() - shapes_b.keys())),
            only_in_base=tuple(sorted(shapes_b.keys() - shapes_a.keys())),
            shape_mismatches=tuple(mismatched),
            skipped=tuple(skipped),
            tolerance=tolerance,
        )


def diff_findings(model: Path, base: Path) -> list[Finding]:
    """Findings from `diff_layers`: which tensors changed and how much, and whether the two line up.

    Never raises for a user problem: an unreadable or incomparable base becomes a
    `diff.unavailable` finding so the rest of the inspection still reports.
    """
    try:
        diff = diff_layers(model, base)
    except WeighbridgeError as exc:
        return [
            Finding(
                kind="diff.unavailable",
                severity="low",
                message=f"The diff against the base model was not run: {exc.message}",
                file=model.name,
                evidence=str(base),
            )
        ]
    return findings_from_diff(diff)


def findings_from_diff(diff: LayerDiff) -> list[Finding]:
    """Turn a `LayerDiff` into findings (separate so callers holding a diff need not recompute it)."""
    findings: list[Finding] = []
    if not diff.aligned:
        parts: list[str] = []
        if diff.only_in_model:
            parts.append(f"{len(diff.only_in_model)} tensors only in the model ({_names(diff.only_in_model)})")
        if diff.only_in_base:
            parts.append(f"{len(diff.only_in_base)} tensors only in the base ({_names(diff.only_in_base)})")
        if diff.shape_mismatches:
            shown = ", ".join(f"{n} {list(a)} vs {list(b)}" for n, a, b in diff.shape_mismatches[:_MAX_LISTED])
            parts.append(f"{len(diff.shape_mismatches)} tensors with different shapes ({shown})")
        findings.append(
            Finding(
                kind="diff.architecture_mismatch",
                severity="high",
                message=(
                    "The model does not have the declared base's architecture: "
                    + "; ".join(parts)
                    + ". Either the declared base is wrong, or layers were added, removed or resized (an adapter "
                    "or vocabulary extension). Ask the submitter to declare the real base and every structural change."
                ),
                file=Path(diff.model).name,
                location="tensor names and shapes",
                evidence=f"base={diff.base}",
            )
        )
    changed = diff.changed
    if changed:
        top = changed[0]
        layers = diff.changed_layers
        layer_text = f"; blocks changed: {_ranges(layers)}" if layers else ""
        listed = ", ".join(f"{c.name} {c.relative_change:.3g}" for c in changed[:_MAX_LISTED])
        findings.append(
            Finding(
                kind="diff.changed_layers",
                severity="low",
                message=(
                    f"{len(changed)} of {len(diff.compared)} compared tensors changed relative to the base "
                    f"(relative change ‖A−B‖/‖B‖ > {diff.tolerance:g}); largest {top.name} {top.relative_change:.3g}"
                    f"{layer_text}. Check that the model card discloses this fine-tune and what it was trained on."
                ),
                file=Path(diff.model).name,
                location=top.name,
                evidence=listed + (f" … and {len(changed) - _MAX_LISTED} more" if len(changed) > _MAX_LISTED else ""),
            )
        )
    else:
        findings.append(
            Finding(
                kind="diff.changed_layers",
                severity="info",
                message=(
                    f"None of the {len(diff.compared)} compared tensors differs from the base by more than "
                    f"{diff.tolerance:g} (relative change): the weights are the base's weights"
                    + ("." if diff.aligned else " where the two line up.")
                ),
                file=Path(diff.model).name,
                evidence=f"base={diff.base}",
            )
        )
    if diff.skipped:
        findings.append(
            Finding(
                kind="diff.skipped_tensors",
                severity="low",
                message=(
                    f"{len(diff.skipped)} tensors were not compared ({_names(tuple(n for n, _ in diff.skipped))}): "
                    f"{diff.skipped[0][1]}. Changes in them would go unnoticed; compare them by other means."
                ),
                file=Path(diff.model).name,
            )
        )
    return findings


class _Unsupported(Exception):
    """A tensor this reader cannot turn into numbers (e.g. a quantisation gguf cannot dequantise)."""


def _relative_change(a: Iterator[npt.NDArray[Any]], b: Iterator[npt.NDArray[Any]]) -> float:
    """‖A−B‖/‖B‖ accumulated over aligned flat slices in float64 (so fp16 sums do not overflow).

    The two sides usually slice identically; when they do not (a bf16 side read flat, an f32 side
    read by rows) A's slices are buffered until they cover B's.
    """
    diff_sq = 0.0
    base_sq = 0.0
    pending = np.empty(0, dtype=np.float64)
    for chunk_b in b:
        flat_b = np.asarray(chunk_b, dtype=np.float64).reshape(-1)
        pieces = [pending] if pending.size else []
        have = pending.size
        while have < flat_b.size:
            piece = next(a, None)
            if piece is None:
                raise _Unsupported("the two sides hold different numbers of elements")
            pieces.append(np.asarray(piece, dtype=np.float64).reshape(-1))
            have += pieces[-1].size
        joined = pieces[0] if len(pieces) == 1 else np.concatenate(pieces)
        flat_a, pending = joined[: flat_b.size], joined[flat_b.size :]
        delta = flat_a - flat_b
        diff_sq += float(np.dot(delta, delta))
        base_sq += float(np.dot(flat_b, flat_b))
    if pending.size or next(a, None) is not None:
        raise _Unsupported("the two sides hold different numbers of elements")
    if base_sq == 0.0:
        return 0.0 if diff_sq == 0.0 else float("inf")
    return float(np.sqrt(diff_sq / base_sq))


def _kind(path: Path) -> str:
    if not path.exists():
        raise WeighbridgeError(f"No such file or directory: {path}", "Give the path of the base model")
    if path.is_dir():
        if any(path.glob("*.safetensors")):
            return "safetensors"
        ggufs = sorted(path.glob("*.gguf"))
        if len(ggufs) == 1:
            return "gguf"
        raise WeighbridgeError(
            f"{path} holds no safetensors shards and not exactly one GGUF file", "Name the model file to compare"
        )
    with path.open("rb") as fh:
        magic = fh.read(4)
    if magic == b"GGUF":
        return "gguf"
    if path.suffix.lower() == ".safetensors":
        return "safetensors"
    raise WeighbridgeError(
        f"{path} is neither GGUF nor safetensors; only those formats can be diffed (pickles are never loaded)",
        "Convert the weights to safetensors or GGUF",
    )


def _shards(path: Path) -> list[Path]:
    return sorted(path.glob("*.safetensors")) if path.is_dir() else [path]


class _GGUFSide:
    """A GGUF file; each tensor is dequantised when asked for, from the memory map."""

    def __init__(self, path: Path) -> None:
        from gguf import GGUFReader

        if path.is_dir():
            path = next(iter(sorted(path.glob("*.gguf"))))
        try:
            reader = GGUFReader(str(path))
        except Exception as exc:  # gguf raises ValueError, struct.error, IndexError... on bad headers
            raise WeighbridgeError(f"Cannot read {path} as GGUF ({exc})", "Check the format findings") from exc
        self._tensors = {t.name: t for t in reader.tensors}

    def stored(self, name: str) -> tuple[str, npt.NDArray[Any]] | None:
        tensor = self._tensors[name]
        return tensor.tensor_type.name, np.asarray(tensor.data)

    def shapes(self) -> dict[str, tuple[int, ...]]:
        # gguf lists dimensions innermost first; reversed they read like numpy/PyTorch shapes.
        return {name: tuple(int(d) for d in reversed(t.shape.tolist())) for name, t in self._tensors.items()}

    def chunks(self, name: str) -> Iterator[npt.NDArray[Any]]:
        from gguf.quants import dequantize

        tensor = self._tensors[name]
        try:
            # A plain view of the memory map: numpy's memmap subclass makes gguf's row-wise
            # dequantisation ~10x slower through millions of __array_finalize__ calls.
            values = dequantize(np.asarray(tensor.data), tensor.tensor_type)
        except NotImplementedError as exc:
            raise _Unsupported(f"gguf cannot dequantise {tensor.tensor_type.name}") from exc
        flat = values.reshape(-1)
        for start in range(0, flat.size, _CHUNK_ELEMENTS):
            yield flat[start : start + _CHUNK_ELEMENTS]


# numpy has no bfloat16: those tensors are read from the header's offsets and widened by hand.
_RAW_DTYPES = {"BF16": np.dtype("<u2")}


class _SafetensorsSide:
    """One or more safetensors files; tensors are read one at a time with `safe_open`."""

    def __init__(self, files: list[Path], stack: ExitStack) -> None:
        from safetensors import safe_open

        self._where: dict[str, tuple[Path, Any]] = {}
        self._headers: dict[Path, tuple[int, dict[str, Any]]] = {}
        self._shapes: dict[str, tuple[int, ...]] = {}
        for file in files:
            try:
                handle = stack.enter_context(safe_open(str(file), framework="numpy"))
            except Exception as exc:  # safetensors raises its own SafetensorError for bad headers
                raise WeighbridgeError(
                    f"Cannot read {file} as safetensors ({exc})", "Check the format findings"
                ) from exc
            for name in handle.keys():  # noqa: SIM118 (a safe_open handle is not iterable)
                self._where[name] = (file, handle)
                self._shapes[name] = tuple(int(d) for d in handle.get_slice(name).get_shape())

    def shapes(self) -> dict[str, tuple[int, ...]]:
        return dict(self._shapes)

    def stored(self, name: str) -> tuple[str, npt.NDArray[Any]] | None:
        return None  # tensors are small enough to compare numerically; no shortcut needed

    def chunks(self, name: str) -> Iterator[npt.NDArray[Any]]:
        file, handle = self._where[name]
        dtype = str(handle.get_slice(name).get_dtype())
        if dtype in _RAW_DTYPES:
            yield from self._raw_chunks(file, name, dtype)
            return
        shape = self._shapes[name]
        if len(shape) >= 2 and shape[0] > 1:
            # Slice along the first axis so a huge embedding is never fully in memory.
            rows = max(1, _CHUNK_ELEMENTS // max(1, int(np.prod(shape[1:]))))
            view = handle.get_slice(name)
            for start in range(0, shape[0], rows):
                yield np.asarray(view[start : min(start + rows, shape[0])])
            return
        try:
            yield np.asarray(handle.get_tensor(name))
        except Exception as exc:  # unsupported dtypes (F8 variants) raise from the Rust side
            raise _Unsupported(f"safetensors cannot give {dtype} tensors to numpy") from exc

    def _raw_chunks(self, file: Path, name: str, dtype: str) -> Iterator[npt.NDArray[Any]]:
        data_start, header = self._header(file)
        begin, end = header[name]["data_offsets"]
        raw = np.memmap(
            file, dtype=_RAW_DTYPES[dtype], mode="r", offset=data_start + begin, shape=((end - begin) // 2,)
        )
        for start in range(0, raw.size, _CHUNK_ELEMENTS):
            # bfloat16 is the top half of a float32.
            yield (raw[start : start + _CHUNK_ELEMENTS].astype(np.uint32) << 16).view(np.float32)

    def _header(self, file: Path) -> tuple[int, dict[str, Any]]:
        if file not in self._headers:
            with file.open("rb") as fh:
                (length,) = struct.unpack("<Q", fh.read(8))
                self._headers[file] = (8 + length, json.loads(fh.read(length)))
        return self._headers[file]


def _names(names: tuple[str, ...]) -> str:
    shown = ", ".join(names[:_MAX_LISTED])
    return shown + (f", … {len(names) - _MAX_LISTED} more" if len(names) > _MAX_LISTED else "")


def _ranges(values: tuple[int, ...]) -> str:
    """(0, 1, 2, 5) -> '0-2, 5'."""
    out: list[str] = []
    start = prev = values[0]
    for v in values[1:]:
        if v != prev + 1:
            out.append(f"{start}-{prev}" if start != prev else str(start))
            start = v
        prev = v
    out.append(f"{start}-{prev}" if start != prev else str(start))
    return ", ".join(out)
