"""A bounded, defensive reader of GGUF headers: key/values and tensor infos, never tensor data.

`gguf.GGUFReader` trusts the header: a count of 2**63 key/values or a string longer than the file
ends in a MemoryError, IndexError or a numpy error deep inside it. This reader checks every count
and length against the bytes that remain before using it, checks each tensor's data range against
the file size, the alignment and its neighbours, and raises `MalformedFile` (a `WeighbridgeError`)
with the offending byte offset. It is also ~50× faster than `GGUFReader` on a 49k-token vocabulary
(it skips long arrays instead of building numpy views per element), so `metadata.py` uses its
result; the tests check both agree on the default model.

Format (v2/v3): magic "GGUF", u32 version, u64 tensor_count, u64 kv_count, kv pairs, tensor infos,
padding to `general.alignment`, tensor data. Little-endian only (big-endian GGUF is rare and refused).
"""

from __future__ import annotations

import math
import mmap
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFValueType

from weighbridge.domain import Finding
from weighbridge.inspection.formats import MalformedFile

SCALAR_FORMATS: Final[dict[int, str]] = {
    GGUFValueType.UINT8: "<B", GGUFValueType.INT8: "<b", GGUFValueType.UINT16: "<H", GGUFValueType.INT16: "<h",
    GGUFValueType.UINT32: "<I", GGUFValueType.INT32: "<i", GGUFValueType.FLOAT32: "<f", GGUFValueType.BOOL: "<?",
    GGUFValueType.UINT64: "<Q", GGUFValueType.INT64: "<q", GGUFValueType.FLOAT64: "<d",
}  # fmt: skip
MAX_DIMS: Final = 4  # GGML_MAX_DIMS
MAX_ARRAY_DEPTH: Final = 4
MAX_KEY_BYTES: Final = 65_535
# Arrays longer than this are validated and skipped, not materialised (token lists, merges, scores).
KEEP_ARRAY_ITEMS: Final = 64
MIN_KV_BYTES: Final = 8 + 1 + 4 + 1  # key length, one key byte, value type, smallest value
MIN_TENSOR_INFO_BYTES: Final = 8 + 1 + 4 + 4 + 8  # name length, one name byte, n_dims, type, offset
DEFAULT_ALIGNMENT: Final = 32

Value = int | float | bool | str | list["Value"]


@dataclass(frozen=True)
class GGUFTensorInfo:
    name: str
    shape: tuple[int, ...]  # GGUF order: innermost dimension first
    type_id: int
    offset: int  # relative to the data section
    nbytes: int

    @property
    def elements(self) -> int:
        return math.prod(self.shape)

    @property
    def type_name(self) -> str:
        return GGMLQuantizationType(self.type_id).name


@dataclass(frozen=True)
class GGUFHeader:
    version: int
    fields: dict[str, Value]  # long arrays are replaced by their length as "<array of N TYPE>"
    array_lengths: dict[str, int]  # length of every top-level array field
    tensors: tuple[GGUFTensorInfo, ...]
    alignment: int
    data_start: int
    file_size: int


class _Cursor:
    """Reads from a buffer, refusing any read past its end."""

    def __init__(self, buf: bytes | mmap.mmap) -> None:
        self.buf = buf
        self.pos = 0
        self.size = len(buf)

    def need(self, n: int, what: str) -> None:
        if n < 0 or n > self.size - self.pos:
            raise MalformedFile(
                "gguf.past_eof", f"{what} needs {n} bytes but only {self.size - self.pos} remain", f"byte {self.pos}"
            )

    def unpack(self, fmt: str, what: str) -> int | float | bool:
        n = struct.calcsize(fmt)
        self.need(n, what)
        (value,) = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += n
        return value  # type: ignore[no-any-return]

    def u32(self, what: str) -> int:
        return int(self.unpack("<I", what))

    def u64(self, what: str) -> int:
        return int(self.unpack("<Q", what))

    def string(self, what: str, keep: bool = True, limit: int | None = None) -> str:
        at = self.pos
        n = self.u64(f"{what} length")
        if limit is not None and n > limit:
            raise MalformedFile("gguf.string_too_long", f"{what} is {n} bytes (limit {limit})", f"byte {at}")
        self.need(n, what)
        raw = self.buf[self.pos : self.pos + n] if keep else b""
        self.pos += n
        return bytes(raw).decode("utf-8", errors="replace")


def read_gguf_header(path: Path) -> GGUFHeader:
    """Parse and check `path`'s header; raises `MalformedFile` on anything inconsistent."""
    size = path.stat().st_size
    if size == 0:
        raise MalformedFile("gguf.truncated", "Empty file", "byte 0")
    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        return parse_gguf_header(buf)


def leading_fields(path: Path, enough: Callable[[dict[str, Value]], bool]) -> dict[str, Value]:
    """The key/values from the start of `path`'s header, read in order until `enough(fields)`:
    a loader that needs one setting (the context length) reads a few hundred bytes instead of
    parsing every tensor's description. Unchecked beyond that: use `read_gguf_header` to inspect."""
    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        cur = _Cursor(buf)
        cur.need(4, "magic")
        if bytes(buf[:4]) != b"GGUF":
            raise MalformedFile("gguf.bad_magic", f"Magic is {bytes(buf[:4])!r}, not b'GGUF'", "byte 0")
        cur.pos = 4
        cur.u32("version")
        cur.u64("tensor count")
        n_kv = cur.u64("key/value count")
        fields: dict[str, Value] = {}
        for _ in range(n_kv):
            key = cur.string("key", limit=MAX_KEY_BYTES)
            fields[key] = _value(cur, cur.u32(f"type of {key}"), key, 0, {})
            if enough(fields):
                break
        return fields


def parse_gguf_header(buf: bytes | mmap.mmap) -> GGUFHeader:
    """Parse a whole GGUF file held in `buf` (bytes, or an mmap so that only header pages are read)."""
    cur = _Cursor(buf)
    cur.need(4, "magic")
    if bytes(buf[:4]) != b"GGUF":
        raise MalformedFile("gguf.bad_magic", f"Magic is {bytes(buf[:4])!r}, not b'GGUF'", "byte 0")
    cur.pos = 4
    version = cur.u32("version")
    if version not in (2, 3):
        raise MalformedFile("gguf.unsupported_version", f"GGUF version {version} (supported: 2, 3)", "byte 4")
    n_tensors = cur.u64("tensor count")
    n_kv = cur.u64("key/value count")
    if n_kv > (cur.size - cur.pos) // MIN_KV_BYTES:
        raise MalformedFile("gguf.count_too_large", f"{n_kv} key/values cannot fit in the file", "byte 16")
    fields: dict[str, Value] = {}
    lengths: dict[str, int] = {}
    for _ in range(n_kv):
        at = cur.pos
        key = cur.string("key", limit=MAX_KEY_BYTES)
        if key in fields:
            raise MalformedFile("gguf.duplicate_key", f"Key {key!r} appears twice", f"byte {at}")
        type_id = cur.u32(f"type of {key}")
        fields[key] = _value(cur, type_id, key, 0, lengths)
    if n_tensors > (cur.size - cur.pos) // MIN_TENSOR_INFO_BYTES:
        raise MalformedFile("gguf.count_too_large", f"{n_tensors} tensors cannot fit in the file", "byte 8")
    infos = [_tensor_info(cur) for _ in range(n_tensors)]
    alignment = fields.get("general.alignment", DEFAULT_ALIGNMENT)
    if not isinstance(alignment, int) or isinstance(alignment, bool) or alignment <= 0 or alignment & (alignment - 1):
        raise MalformedFile("gguf.bad_alignment", f"general.alignment {alignment!r} is not a power of two")
    data_start = -(-cur.pos // alignment) * alignment
    _check_data(infos, alignment, data_start, cur.size)
    return GGUFHeader(version, fields, lengths, tuple(infos), alignment, data_start, cur.size)


def _value(cur: _Cursor, type_id: int, key: str, depth: int, lengths: dict[str, int]) -> Value:
    if type_id in SCALAR_FORMATS:
        return cur.unpack(SCALAR_FORMATS[type_id], key)
    if type_id == GGUFValueType.STRING:
        return cur.string(key)
    if type_id != GGUFValueType.ARRAY:
        raise MalformedFile("gguf.bad_value_type", f"Key {key!r} has unknown value type {type_id}", key)
    if depth >= MAX_ARRAY_DEPTH:
        raise MalformedFile("gguf.too_deep", f"Key {key!r} nests arrays deeper than {MAX_ARRAY_DEPTH}", key)
    item_type = cur.u32(f"item type of {key}")
    count = cur.u64(f"length of {key}")
    if depth == 0:
        lengths[key] = count
    if item_type in SCALAR_FORMATS:
        width = struct.calcsize(SCALAR_FORMATS[item_type])
        if count > (cur.size - cur.pos) // width:
            raise MalformedFile("gguf.array_past_eof", f"Array {key!r} of {count} items runs past EOF", key)
        if count > KEEP_ARRAY_ITEMS:
            cur.pos += count * width
            return f"<array of {count} {GGUFValueType(item_type).name}>"
        return [cur.unpack(SCALAR_FORMATS[item_type], key) for _ in range(count)]
    if count > (cur.size - cur.pos) // 8:  # every string or array item is at least 8 bytes
        raise MalformedFile("gguf.array_past_eof", f"Array {key!r} of {count} items runs past EOF", key)
    keep = count <= KEEP_ARRAY_ITEMS
    if item_type == GGUFValueType.STRING and not keep:
        for _ in range(count):
            cur.string(key, keep=False)
        return f"<array of {count} STRING>"
    items = [_value(cur, item_type, key, depth + 1, lengths) for _ in range(count)]
    if not keep:
        return f"<array of {count} {GGUFValueType(item_type).name if item_type in (8, 9) else item_type}>"
    return items


def _tensor_info(cur: _Cursor) -> GGUFTensorInfo:
    at = cur.pos
    name = cur.string("tensor name", limit=MAX_KEY_BYTES)
    n_dims = cur.u32(f"dimensions of {name}")
    if n_dims > MAX_DIMS:
        raise MalformedFile("gguf.bad_tensor", f"Tensor {name!r} has {n_dims} dimensions (max 4)", f"byte {at}")
    shape = tuple(cur.u64(f"shape of {name}") for _ in range(n_dims))
    type_id = cur.u32(f"type of {name}")
    offset = cur.u64(f"offset of {name}")
    try:
        block, type_size = GGML_QUANT_SIZES[GGMLQuantizationType(type_id)]
    except (ValueError, KeyError):
        raise MalformedFile("gguf.bad_tensor", f"Tensor {name!r} has unknown type {type_id}", name) from None
    elements = math.prod(shape)
    if shape and shape[0] % block:
        raise MalformedFile("gguf.bad_tensor", f"Tensor {name!r}: row of {shape[0]} is not a multiple of {block}", name)
    return GGUFTensorInfo(name, shape, type_id, offset, elements // block * type_size)


def _check_data(infos: list[GGUFTensorInfo], alignment: int, data_start: int, size: int) -> None:
    names: set[str] = set()
    end_prev = 0
    for t in sorted(infos, key=lambda t: t.offset):
        if t.name in names:
            raise MalformedFile("gguf.duplicate_tensor", f"Tensor {t.name!r} appears twice", t.name)
        names.add(t.name)
        if t.offset % alignment:
            raise MalformedFile(
                "gguf.misaligned", f"Tensor {t.name!r} at {t.offset} is not {alignment}-aligned", t.name
            )
        if data_start + t.offset + t.nbytes > size:
            raise MalformedFile(
                "gguf.offset_past_eof",
                f"Tensor {t.name!r} ends at byte {data_start + t.offset + t.nbytes}, file has {size}",
                t.name,
            )
        if t.offset < end_prev:
            raise MalformedFile("gguf.overlap", f"Tensor {t.name!r} overlaps the previous tensor", t.name)
        end_prev = t.offset + t.nbytes


def header_findings(path: Path, file: str) -> tuple[GGUFHeader | None, list[Finding]]:
    """Check a GGUF file; a malformed header becomes a `high` finding instead of an error."""
    try:
        return read_gguf_header(path), []
    except MalformedFile as exc:
        return None, [Finding(exc.kind, "high", exc.problem, file, exc.location)]
