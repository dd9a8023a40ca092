"""Read and check a safetensors header without touching tensor data.

The `safetensors` library memory-maps the data and applies its own limits; inspection needs only
the 8-byte length and the JSON header, and must treat a hostile header as a finding. So this parser
reads at most `MAX_SAFETENSORS_HEADER` bytes, validates every entry against the file size, and raises
`MalformedFile` (a `WeighbridgeError`) for anything inconsistent.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

from weighbridge.domain import Finding
from weighbridge.inspection.formats import MAX_SAFETENSORS_HEADER, MalformedFile

# Bits per element of each dtype the safetensors format defines.
DTYPE_BITS: Final[dict[str, int]] = {
    "BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8, "I16": 16, "U16": 16,
    "F16": 16, "BF16": 16, "I32": 32, "U32": 32, "F32": 32, "F64": 64, "I64": 64, "U64": 64,
    "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6, "C64": 64,
}  # fmt: skip
MAX_DIMS: Final = 16


@dataclass(frozen=True)
class TensorEntry:
    name: str
    dtype: str
    shape: tuple[int, ...]
    begin: int  # relative to the start of the data section
    end: int

    @property
    def elements(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class SafetensorsHeader:
    header_bytes: int
    data_start: int
    tensors: tuple[TensorEntry, ...]
    metadata: dict[str, str]
    # Bytes of the data section that no tensor covers (safetensors forbids holes; data could hide there).
    uncovered_bytes: int


def read_safetensors_header(path: Path) -> SafetensorsHeader:
    """Parse `path`'s header; raises `MalformedFile` on anything the format does not allow."""
    with path.open("rb") as fh:
        return parse_safetensors_header(fh, path.stat().st_size)


def parse_safetensors_header(fh: IO[bytes], size: int) -> SafetensorsHeader:
    """Parse from an open binary stream of `size` bytes (positioned at 0)."""
    if size < 8:
        raise MalformedFile("safetensors.truncated", f"File of {size} bytes has no 8-byte header length", "byte 0")
    (n,) = struct.unpack("<Q", fh.read(8))
    if n > MAX_SAFETENSORS_HEADER:
        raise MalformedFile("safetensors.header_too_large", f"Header declares {n} bytes (limit 100 MB)", "byte 0")
    if n > size - 8:
        raise MalformedFile("safetensors.header_past_eof", f"Header declares {n} bytes, file has {size - 8}", "byte 0")
    raw = fh.read(n)
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise MalformedFile("safetensors.invalid_json", f"Header is not valid JSON: {exc}"[:300], "byte 8") from None
    if not isinstance(header, dict):
        raise MalformedFile("safetensors.invalid_json", "Header is not a JSON object", "byte 8")
    data_len = size - 8 - n
    metadata = _metadata(header.pop("__metadata__", {}))
    tensors = tuple(sorted((_entry(k, v, data_len) for k, v in header.items()), key=lambda t: (t.begin, t.end)))
    covered = 0
    last_end = 0
    for t in tensors:
        if t.begin < last_end and t.end > t.begin:
            raise MalformedFile("safetensors.overlap", f"Tensor {t.name!r} overlaps the previous tensor", t.name)
        covered += t.end - t.begin
        last_end = max(last_end, t.end)
    return SafetensorsHeader(n, 8 + n, tensors, metadata, data_len - covered)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _metadata(value: object) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise MalformedFile("safetensors.bad_metadata", "__metadata__ must map strings to strings", "__metadata__")
    return dict(value)


def _entry(name: str, value: object, data_len: int) -> TensorEntry:
    if not isinstance(value, dict):
        raise MalformedFile("safetensors.bad_tensor", f"Entry {name!r} is not an object", name)
    dtype, shape, offsets = value.get("dtype"), value.get("shape"), value.get("data_offsets")
    if not isinstance(dtype, str) or dtype not in DTYPE_BITS:
        raise MalformedFile("safetensors.unknown_dtype", f"Tensor {name!r} has unknown dtype {dtype!r}"[:200], name)
    if (
        not isinstance(shape, list)
        or len(shape) > MAX_DIMS
        or not all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 1 << 62 for d in shape)
    ):
        raise MalformedFile("safetensors.bad_shape", f"Tensor {name!r} has an invalid shape"[:200], name)
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
    ):
        raise MalformedFile("safetensors.bad_offsets", f"Tensor {name!r} has invalid data_offsets", name)
    begin, end = offsets
    if not 0 <= begin <= end:
        raise MalformedFile("safetensors.bad_offsets", f"Tensor {name!r} has offsets {begin}..{end}", name)
    if end > data_len:
        raise MalformedFile(
            "safetensors.offset_past_eof", f"Tensor {name!r} ends at {end}, data section has {data_len} bytes", name
        )
    bits = math.prod(shape) * DTYPE_BITS[dtype]
    if bits % 8 or bits // 8 != end - begin:
        raise MalformedFile(
            "safetensors.size_mismatch",
            f"Tensor {name!r}: shape {shape} × {dtype} is {bits / 8:g} bytes but its offsets span {end - begin}",
            name,
        )
    return TensorEntry(name, dtype, tuple(shape), begin, end)


def header_findings(path: Path, file: str) -> tuple[SafetensorsHeader | None, list[Finding]]:
    """Check a safetensors file; a malformed header becomes a `high` finding instead of an error."""
    try:
        header = read_safetensors_header(path)
    except MalformedFile as exc:
        return None, [Finding(exc.kind, "high", exc.problem, file, exc.location)]
    findings = []
    if header.uncovered_bytes:
        findings.append(
            Finding(
                "safetensors.uncovered_bytes",
                "medium",
                f"{header.uncovered_bytes} bytes of the data section belong to no tensor (data could hide there)",
                file,
                f"byte {header.data_start}",
            )
        )
    return header, findings
