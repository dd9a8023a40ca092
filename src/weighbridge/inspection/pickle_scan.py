"""Find what a pickle would import, by reading its opcodes: nothing is ever unpickled.

Loading a pickle runs code: every GLOBAL / STACK_GLOBAL / INST opcode imports a callable that a
later REDUCE may call with attacker-chosen arguments. Like modelscan and picklescan we list those
imports and judge them against a denylist (known code-execution primitives → critical/high) and an
allowlist (the rebuild functions PyTorch, NumPy and the standard containers use → nothing); anything
else is `medium`, because an unknown callable is exactly how a new gadget would look.

STACK_GLOBAL takes its module and name from the stack, so a scanner that only looks at the two
previous opcodes is fooled by strings stored in the memo and fetched later (BINGET) or duplicated.
`scan_pickle_stream` therefore runs a small symbolic stack machine over the opcode stream: strings
are tracked through the stack and the memo; everything else is an opaque placeholder.
"""

from __future__ import annotations

import ast
import io
import pickletools
import struct
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final, cast

from weighbridge.domain import Finding, Severity

# Module (or dotted prefix) → names; "*" means every name in it and in its submodules.
CRITICAL_GLOBALS: Final[dict[str, frozenset[str]]] = {
    m: frozenset({"*"})
    for m in (
        "os", "posix", "nt", "subprocess", "_posixsubprocess", "pty", "runpy", "socket", "shutil", "sys",
        "importlib", "ctypes", "code", "codeop", "pdb", "bdb", "asyncio", "multiprocessing", "signal",
        "pickle", "_pickle", "cPickle", "dill", "cloudpickle", "marshal", "types", "joblib", "shelve",
        "commands", "popen2", "platform", "sysconfig", "_io", "io", "zipimport", "imp", "tempfile",
    )
} | {
    "builtins": frozenset({
        "eval", "exec", "compile", "open", "getattr", "setattr", "delattr", "__import__", "breakpoint",
        "apply", "execfile", "input", "globals", "locals", "vars", "memoryview", "help", "exit", "quit",
    }),
    "__builtin__": frozenset({
        "eval", "exec", "compile", "open", "getattr", "setattr", "delattr", "__import__", "breakpoint",
        "apply", "execfile", "input", "globals", "locals", "vars", "file", "reload",
    }),
    "operator": frozenset({"attrgetter", "methodcaller", "itemgetter"}),
    "functools": frozenset({"reduce"}),
    "torch": frozenset({"load"}),
    "torch.serialization": frozenset({"*"}),
    "torch.hub": frozenset({"*"}),
    "torch.storage": frozenset({"_load_from_bytes"}),
    "numpy": frozenset({"load"}),
    "numpy.testing._private.utils": frozenset({"*"}),
}  # fmt: skip
HIGH_GLOBALS: Final[dict[str, frozenset[str]]] = {
    m: frozenset({"*"})
    for m in (
        "webbrowser", "requests", "urllib", "urllib2", "urllib3", "httplib", "http", "httpx", "aiohttp",
        "ftplib", "smtplib", "telnetlib", "ssl", "xmlrpc", "paramiko", "pip", "setuptools", "distutils",
    )
}  # fmt: skip
# Globals PyTorch, NumPy and the standard library put in ordinary checkpoints.
SAFE_GLOBALS: Final[frozenset[str]] = frozenset(
    {
        "collections.OrderedDict", "collections.defaultdict", "collections.Counter", "collections.deque",
        "builtins.set", "builtins.frozenset", "builtins.dict", "builtins.list", "builtins.tuple",
        "builtins.bytearray", "builtins.bytes", "builtins.complex", "builtins.slice", "builtins.range",
        "builtins.int", "builtins.float", "builtins.str", "builtins.bool", "builtins.object",
        "__builtin__.set", "__builtin__.frozenset", "__builtin__.dict", "__builtin__.list",
        "__builtin__.tuple", "__builtin__.bytearray", "__builtin__.complex", "__builtin__.slice",
        "__builtin__.object", "__builtin__.unicode", "__builtin__.long",
        "copy_reg._reconstructor", "copyreg._reconstructor", "copyreg.__newobj__", "_codecs.encode",
        "torch._utils._rebuild_tensor", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor_v3",
        "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state",
        "torch._utils._rebuild_qtensor", "torch._utils._rebuild_sparse_tensor", "torch._utils._rebuild_nested_tensor",
        "torch._utils._rebuild_device_tensor_from_numpy", "torch._utils._rebuild_meta_tensor_no_storage",
        "torch._utils._rebuild_wrapper_subclass", "torch._tensor._rebuild_from_type_v2",
        "torch.Size", "torch.device", "torch.dtype", "torch.nn.parameter.Parameter", "torch.Tensor",
        "numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct", "numpy.ndarray",
        "numpy.dtype", "numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar",
        "datetime.datetime", "datetime.date", "datetime.timedelta", "decimal.Decimal", "fractions.Fraction",
        "uuid.UUID", "argparse.Namespace", "pathlib.PosixPath", "pathlib.WindowsPath", "pathlib.PurePosixPath",
    }
)  # fmt: skip
_TORCH_TYPES: Final = frozenset(
    {"float16", "float32", "float64", "bfloat16", "int8", "uint8", "int16", "int32", "int64", "bool",
     "complex64", "complex128", "float8_e4m3fn", "float8_e5m2", "half", "float", "double", "long", "int"}
)  # fmt: skip

_STRING_OPS: Final = frozenset(
    {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "STRING", "BINSTRING", "SHORT_BINSTRING"}
)
_MEMO_PUT: Final = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})
_MEMO_GET: Final = frozenset({"GET", "BINGET", "LONG_BINGET"})
MAX_OPCODES: Final = 50_000_000
MAX_LINE: Final = 1 << 20  # protocol-0 text arguments longer than this are treated as malformed
MAX_MEMBER_BYTES: Final = 1 << 30  # zip members (pickles, nested archives) read into memory at most
MAX_ZIP_DEPTH: Final = 3


class _Opaque:
    """A stack value the scanner does not track (numbers, containers, call results)."""


class _Mark:
    """The MARK sentinel."""


_OPAQUE: Final = _Opaque()
_MARK: Final = _Mark()
_Value = str | _Opaque | _Mark


@dataclass(frozen=True)
class GlobalRef:
    """One import a pickle would perform: `module.name`, at byte `offset`, by `opcode`."""

    module: str
    name: str
    offset: int
    opcode: str

    @property
    def qualified(self) -> str:
        return f"{self.module}.{self.name}"


@dataclass(frozen=True)
class PickleScan:
    """What one pass over a pickle stream found. `error` is set when the stream is malformed."""

    globals: tuple[GlobalRef, ...]
    unresolved: tuple[int, ...]  # offsets of STACK_GLOBALs whose operands are not constant strings
    extensions: tuple[int, ...]  # offsets of EXT1/2/4 (the copyreg extension registry)
    opcodes: int
    end: int  # offset just past STOP (or where parsing stopped)
    error: str | None = None


def classify(module: str, name: str) -> Severity | None:
    """Severity of importing `module.name` when unpickling; `None` for known-safe rebuild helpers."""
    if f"{module}.{name}" in SAFE_GLOBALS or (module == "torch" and (name in _TORCH_TYPES or name.endswith("Storage"))):
        return None
    for table, severity in ((CRITICAL_GLOBALS, "critical"), (HIGH_GLOBALS, "high")):
        names = _lookup(table, module)
        if names is not None and ("*" in names or name in names):
            return severity  # type: ignore[return-value]
    if module in ("builtins", "__builtin__"):
        return "high"  # builtins not on the allowlist: reached by attacks, never by plain data
    return "medium"


def _lookup(table: dict[str, frozenset[str]], module: str) -> frozenset[str] | None:
    """Match `module` or any parent package: `os.path` is as dangerous as `os`."""
    if module in table:
        return table[module]
    parts = module.split(".")
    for i in range(len(parts) - 1, 0, -1):
        names = table.get(".".join(parts[:i]))
        if names is not None and "*" in names:
            return names
    return None


def scan_pickle_stream(stream: IO[bytes], max_opcodes: int = MAX_OPCODES) -> PickleScan:
    """Walk one pickle (up to STOP) from `stream` and collect the imports it would perform."""
    stack: list[_Value] = []
    memo: dict[int, _Value] = {}
    found: list[GlobalRef] = []
    unresolved: list[int] = []
    extensions: list[int] = []
    count = 0
    end = 0
    try:
        for opcode, arg, pos in pickletools.genops(stream):
            count += 1
            end = (pos or 0) + 1
            if count > max_opcodes:
                raise ValueError(f"more than {max_opcodes} opcodes")
            _step(opcode, arg, pos or 0, stack, memo, found, unresolved, extensions)
        end = stream.tell()
    except Exception as exc:  # pickletools raises ValueError, but hostile bytes reach others too
        return PickleScan(tuple(found), tuple(unresolved), tuple(extensions), count, end, _describe(exc))
    return PickleScan(tuple(found), tuple(unresolved), tuple(extensions), count, end)


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]


def _step(
    op: pickletools.OpcodeInfo,
    arg: object,
    pos: int,
    stack: list[_Value],
    memo: dict[int, _Value],
    found: list[GlobalRef],
    unresolved: list[int],
    extensions: list[int],
) -> None:
    """Apply one opcode's effect to the symbolic stack, recording imports."""
    name = op.name
    if name in _STRING_OPS:
        stack.append(arg.decode("latin-1") if isinstance(arg, bytes) else str(arg))
    elif name in ("GLOBAL", "INST"):
        module, _, attr = str(arg).partition(" ")
        found.append(GlobalRef(module, attr, pos, name))
        if name == "INST":
            _pop_mark(stack)
        stack.append(_OPAQUE)
    elif name == "STACK_GLOBAL":
        attr_v = stack.pop() if stack else _OPAQUE
        module_v = stack.pop() if stack else _OPAQUE
        if isinstance(module_v, str) and isinstance(attr_v, str):
            found.append(GlobalRef(module_v, attr_v, pos, name))
        else:
            unresolved.append(pos)
        stack.append(_OPAQUE)
    elif name == "MEMOIZE":
        memo[len(memo)] = stack[-1] if stack else _OPAQUE
    elif name in _MEMO_PUT:
        memo[int(arg) if isinstance(arg, int) else -1] = stack[-1] if stack else _OPAQUE
    elif name in _MEMO_GET:
        stack.append(memo.get(int(arg) if isinstance(arg, int) else -1, _OPAQUE))
    elif name == "DUP":
        stack.append(stack[-1] if stack else _OPAQUE)
    elif name in ("EXT1", "EXT2", "EXT4"):
        extensions.append(pos)
        stack.append(_OPAQUE)
    else:
        _generic(op, stack)


def _generic(op: pickletools.OpcodeInfo, stack: list[_Value]) -> None:
    """Pop what the opcode consumes (through the last MARK if it takes one), push placeholders."""
    before = op.stack_before
    if pickletools.markobject in before:
        _pop_mark(stack)
        below = before.index(pickletools.markobject)  # items listed before the mark sit below it
    else:
        below = len(before)
    del stack[max(0, len(stack) - below) :]
    for item in op.stack_after:
        stack.append(_MARK if item is pickletools.markobject else _OPAQUE)


def _pop_mark(stack: list[_Value]) -> None:
    while stack:
        if stack.pop() is _MARK:
            return


def scan_pickles(data: IO[bytes], size: int, max_pickles: int = 16) -> Iterator[PickleScan]:
    """Scan consecutive pickles in one stream, as the legacy `torch.save` format writes them.

    Stops at end of data, at the first malformed pickle, or where non-pickle data begins after at
    least one complete pickle (legacy checkpoints append raw tensor bytes after their pickles).
    """
    for index in range(max_pickles):
        if data.tell() >= size:
            return
        scan = scan_pickle_stream(cast(IO[bytes], _Bounded(data, size)))
        if scan.error is not None and index > 0 and not scan.globals and not scan.unresolved:
            return  # trailing tensor bytes, not a pickle
        yield scan
        if scan.error is not None:
            return
        data.seek(scan.end)


class _Bounded(io.RawIOBase):
    """A read-only view that never asks the OS for more than what is left of the file.

    A hostile BINBYTES8 can declare a length of 2**63; passing that to a buffered file's
    `read` would try to allocate it. Clamping turns it into an ordinary "truncated" error.
    """

    def __init__(self, inner: IO[bytes], size: int) -> None:
        self._inner = inner
        self._size = size

    def read(self, n: int | None = -1) -> bytes:
        left = max(0, self._size - self._inner.tell())
        return self._inner.read(left if n is None or n < 0 else min(n, left))

    def readline(self, limit: int | None = -1) -> bytes:
        cap = MAX_LINE if limit is None or limit < 0 else min(limit, MAX_LINE)
        return self._inner.readline(cap)

    def tell(self) -> int:
        return self._inner.tell()

    def readable(self) -> bool:
        return True


def findings_for(scan: PickleScan, file: str, where: str = "") -> list[Finding]:
    """Turn one scan into findings: one per dangerous or unknown import, one for a malformed stream."""
    prefix = f"{where}:" if where else ""
    out: list[Finding] = []
    for ref in scan.globals:
        severity = classify(ref.module, ref.name)
        if severity is None:
            continue
        kind = "pickle.dangerous_global" if severity in ("critical", "high") else "pickle.unknown_global"
        verb = "imports" if severity in ("critical", "high") else "imports a callable not on the allowlist:"
        out.append(
            Finding(
                kind=kind,
                severity=severity,
                message=f"Unpickling this file {verb} {ref.qualified}",
                file=file,
                location=f"{prefix}byte {ref.offset}",
                evidence=f"{ref.opcode} {ref.module} {ref.name}",
            )
        )
    for offset in scan.unresolved:
        out.append(
            Finding(
                kind="pickle.unresolved_global",
                severity="high",
                message="STACK_GLOBAL imports a name computed at load time; only an obfuscated pickle does this",
                file=file,
                location=f"{prefix}byte {offset}",
                evidence="STACK_GLOBAL with non-constant operands",
            )
        )
    for offset in scan.extensions:
        out.append(
            Finding(
                kind="pickle.extension_code",
                severity="medium",
                message="Imports through the copyreg extension registry, which a scanner cannot resolve",
                file=file,
                location=f"{prefix}byte {offset}",
            )
        )
    if scan.error is not None:
        out.append(
            Finding(
                kind="pickle.malformed",
                severity="medium",
                message="The pickle stream is malformed or truncated; it was scanned up to the error",
                file=file,
                location=f"{prefix}byte {scan.end}",
                evidence=scan.error,
            )
        )
    return out


def scan_bytes(data: bytes, file: str, where: str = "") -> list[Finding]:
    """Scan every pickle in an in-memory buffer (a zip member, an .npy object payload)."""
    out: list[Finding] = []
    for scan in scan_pickles(io.BytesIO(data), len(data)):
        out.extend(findings_for(scan, file, where))
    return out


def scan_pickle_file(path: Path, file: str) -> list[Finding]:
    """Scan a raw pickle file (any protocol; legacy `torch.save` files hold several in a row)."""
    size = path.stat().st_size
    out: list[Finding] = []
    with path.open("rb") as fh:
        for scan in scan_pickles(fh, size):
            out.extend(findings_for(scan, file))
    return out


def scan_zip_bytes(data: IO[bytes], file: str, where: str = "", depth: int = 0) -> list[Finding]:
    """Scan a zip (PyTorch's format, .npz, or any archive) without extracting it to disk.

    Members ending in .pkl/.pickle are scanned as pickles, .npy as NumPy arrays, and members that
    are themselves zips (or start with a pickle protocol header) are scanned too, up to a depth.
    Tensor storages (PyTorch's `data/N`) are raw numbers and are counted, not parsed.
    """
    try:
        zf = zipfile.ZipFile(data)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
        return [Finding("archive.malformed", "medium", f"Not a readable zip archive: {exc}", file, where or None)]
    out: list[Finding] = []
    with zf:
        for info in zf.infolist():
            if info.is_dir():
                continue
            loc = f"{where}!{info.filename}" if where else info.filename
            out.extend(_scan_member(zf, info, file, loc, depth))
    return out


def _scan_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, file: str, loc: str, depth: int) -> list[Finding]:
    lower = info.filename.lower()
    try:
        with zf.open(info) as member:
            head = member.read(8)
        is_zip = head[:4] in (b"PK\x03\x04", b"PK\x05\x06")
        is_pickle = lower.endswith((".pkl", ".pickle")) or (len(head) >= 2 and head[0] == 0x80 and head[1] <= 5)
        is_npy = head.startswith(b"\x93NUMPY")
        if not (is_zip or is_pickle or is_npy):
            return []
        if info.file_size > MAX_MEMBER_BYTES:
            return [
                Finding(
                    "archive.member_too_large", "medium", f"Member of {info.file_size} bytes not scanned", file, loc
                )
            ]
        if is_zip and depth >= MAX_ZIP_DEPTH:
            return [Finding("archive.too_deep", "high", "Archive nested deeper than the scanner follows", file, loc)]
        data = _read_capped(zf, info)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError, RuntimeError) as exc:
        return [Finding("archive.malformed", "medium", f"Unreadable zip member: {exc}", file, loc)]
    if is_zip:
        return scan_zip_bytes(io.BytesIO(data), file, loc, depth + 1)
    if is_npy:
        return scan_npy_bytes(io.BytesIO(data), len(data), file, loc)
    return scan_bytes(data, file, loc)


def _read_capped(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """Read a member, refusing to inflate more than MAX_MEMBER_BYTES (a zip bomb lies about its size)."""
    with zf.open(info) as member:
        data = member.read(MAX_MEMBER_BYTES + 1)
    if len(data) > MAX_MEMBER_BYTES:
        raise ValueError(f"member inflates past {MAX_MEMBER_BYTES} bytes")
    return data


def scan_zip_file(path: Path, file: str) -> list[Finding]:
    with path.open("rb") as fh:
        return scan_zip_bytes(fh, file)


def scan_npy_bytes(data: IO[bytes], size: int, file: str, where: str = "") -> list[Finding]:
    """Check an .npy header; an object dtype means `np.load(allow_pickle=True)` would unpickle the body."""
    loc = where or None
    try:
        descr, header_end = _npy_header(data, size)
    except (ValueError, SyntaxError, struct.error, MemoryError, RecursionError) as exc:
        return [Finding("numpy.malformed", "medium", f"Malformed .npy header: {exc}"[:300], file, loc)]
    if "O" not in descr:
        return []
    out = [
        Finding(
            "numpy.object_dtype",
            "high",
            "NumPy array with object dtype: loading it with allow_pickle=True unpickles its payload",
            file,
            loc,
            evidence=f"descr={descr[:200]}",
        )
    ]
    data.seek(header_end)
    for scan in scan_pickles(data, size):
        out.extend(findings_for(scan, file, where))
    return out


def scan_npy_file(path: Path, file: str) -> list[Finding]:
    with path.open("rb") as fh:
        return scan_npy_bytes(fh, path.stat().st_size, file)


def _npy_header(data: IO[bytes], size: int) -> tuple[str, int]:
    """Parse the .npy preamble with `ast.literal_eval` (literals only: nothing is executed)."""
    pre = data.read(10)
    if len(pre) < 10 or not pre.startswith(b"\x93NUMPY"):
        raise ValueError("missing .npy magic")
    major = pre[6]
    if major == 1:
        (hlen,) = struct.unpack("<H", pre[8:10])
        start = 10
    elif major in (2, 3):
        pre += data.read(2)
        (hlen,) = struct.unpack("<I", pre[8:12])
        start = 12
    else:
        raise ValueError(f"unknown .npy version {major}")
    if start + hlen > size or hlen > 1 << 20:
        raise ValueError(f"header length {hlen} exceeds the file")
    header = ast.literal_eval(data.read(hlen).decode("latin-1"))
    if not isinstance(header, dict) or "descr" not in header:
        raise ValueError("header is not a dict with 'descr'")
    return repr(header["descr"]), start + hlen
