"""Hostile and benign pickle-based files, built at run time (no hostile binary is ever committed).

Each hostile file, *if it were loaded* (pickle.load / torch.load / np.load(allow_pickle=True)),
would create its own marker file; `tests/test_pickle_scan.py` proves that by loading them in a
throw-away subprocess, then checks the scanner flags every one without creating any marker.
The benchmark `benchmarks/pickle_scan_vs_modelscan.py` scans the same corpus with modelscan.
"""

from __future__ import annotations

import io
import os
import pickle
import runpy
import struct
import subprocess
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

Loader = Literal["pickle", "torch-zip", "nested-zip", "npy", "legacy"]


@dataclass(frozen=True)
class CorpusFile:
    name: str
    path: Path
    hostile: bool
    loader: Loader  # how a victim would load it (used to prove the payload is real)
    marker: Path | None  # what loading it would create
    what: str


class _Reduce:
    """An object that pickles as `fn(*args)`."""

    def __init__(self, fn: Callable[..., Any], *args: Any) -> None:
        self.fn, self.args = fn, args

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.fn, self.args)


def _touch_code(marker: Path) -> str:
    return f"open({str(marker)!r}, 'w').close()"


def _short_unicode(text: str) -> bytes:
    raw = text.encode()
    return b"\x8c" + bytes([len(raw)]) + raw


def _stack_global_via_memo(marker: Path) -> bytes:
    """Protocol 4, module and name memoized, popped, and fetched back with BINGET before STACK_GLOBAL.

    A scanner that reads the two opcodes just before STACK_GLOBAL sees BINGETs, not strings.
    """
    return (
        b"\x80\x04"
        + _short_unicode("os") + b"\x94" + b"0"  # MEMOIZE 0, POP
        + _short_unicode("system") + b"\x94" + b"0"  # MEMOIZE 1, POP
        + _short_unicode("padding") + b"0"
        + b"h\x00h\x01"  # BINGET 0, BINGET 1
        + b"\x93"  # STACK_GLOBAL
        + _short_unicode(f"touch {marker}") + b"\x85"  # TUPLE1
        + b"R."  # REDUCE, STOP
    )  # fmt: skip


def _getattr_chain(marker: Path) -> bytes:
    """Protocol 2: getattr(__import__('os'), 'system')('touch MARKER'), built from REDUCE calls."""
    return (
        b"\x80\x02"
        + b"cbuiltins\ngetattr\n"
        + b"cbuiltins\n__import__\n" + b"X\x02\x00\x00\x00os" + b"\x85R"  # __import__('os')
        + b"X\x06\x00\x00\x00system" + b"\x86R"  # getattr(os, 'system')
        + b"X" + struct.pack("<I", len(f"touch {marker}")) + f"touch {marker}".encode() + b"\x85R."
    )  # fmt: skip


def _torch_zip(pickle_bytes: bytes, prefix: str = "archive") -> bytes:
    """The layout torch.save writes: PREFIX/data.pkl, PREFIX/version, PREFIX/data/N storages."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(f"{prefix}/data.pkl", pickle_bytes)
        zf.writestr(f"{prefix}/version", "3\n")
        zf.writestr(f"{prefix}/byteorder", "little")
        zf.writestr(f"{prefix}/data/0", np.arange(4, dtype=np.float32).tobytes())
    return buf.getvalue()


def _safe_torch_pickle() -> bytes:
    """What torch.save writes for {'weight': tensor}: OrderedDict + _rebuild_tensor_v2 + a storage pid."""
    storage_pid = (
        b"(" + b"X\x07\x00\x00\x00storage" + b"ctorch\nFloatStorage\n" + b"X\x01\x00\x00\x000"
        + b"X\x03\x00\x00\x00cpu" + b"K\x04" + b"tq\x01Q"  # TUPLE, BINPUT, BINPERSID
    )  # fmt: skip
    return (
        b"\x80\x02" + b"ccollections\nOrderedDict\nq\x00)Rq\x02"
        + b"X\x06\x00\x00\x00weight"
        + b"ctorch._utils\n_rebuild_tensor_v2\nq\x03(" + storage_pid
        + b"K\x00" + b"K\x04\x85" + b"K\x01\x85" + b"\x89"  # offset, size, stride, requires_grad
        + b"ccollections\nOrderedDict\n)R" + b"tq\x04Rq\x05" + b"s."  # hooks; TUPLE REDUCE; SETITEM STOP
    )  # fmt: skip


def _legacy_torch(payload: bytes) -> bytes:
    """Legacy (pre-1.6) torch.save: magic number, protocol, sys info, then the object, all pickles."""
    head = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2) + pickle.dumps(1001, protocol=2)
    return head + pickle.dumps({"little_endian": True}, protocol=2) + payload + b"\x00" * 64


def build_corpus(out: Path, markers: Path) -> list[CorpusFile]:
    """Write the corpus under `out`; hostile payloads would touch files under `markers`."""
    out.mkdir(parents=True, exist_ok=True)
    markers.mkdir(parents=True, exist_ok=True)
    files: list[CorpusFile] = []

    def add(name: str, data: bytes, loader: Loader, what: str, hostile: bool = True) -> None:
        path = out / name
        path.write_bytes(data)
        files.append(CorpusFile(name, path, hostile, loader, markers / name if hostile else None, what))

    def m(name: str) -> Path:
        return markers / name

    add(
        "os_system.pkl",
        pickle.dumps(_Reduce(os.system, f"touch {m('os_system.pkl')}"), protocol=4),
        "pickle",
        "os.system via STACK_GLOBAL (protocol 4)",
    )
    add(
        "subprocess_popen.pkl",
        pickle.dumps(_Reduce(subprocess.Popen, ["touch", str(m("subprocess_popen.pkl"))]), protocol=2),
        "pickle",
        "subprocess.Popen (protocol 2)",
    )
    add(
        "builtins_exec.pkl",
        pickle.dumps(_Reduce(exec, _touch_code(m("builtins_exec.pkl"))), protocol=3),
        "pickle",
        "builtins.exec (protocol 3)",
    )
    add(
        "builtins_eval.pkl",
        pickle.dumps(_Reduce(eval, _touch_code(m("builtins_eval.pkl"))), protocol=5),
        "pickle",
        "builtins.eval (protocol 5)",
    )
    add(
        "runpy_run_code.pkl",
        pickle.dumps(_Reduce(runpy._run_code, _touch_code(m("runpy_run_code.pkl")), {}), protocol=4),  # type: ignore[attr-defined]
        "pickle",
        "runpy._run_code",
    )
    add(
        "stack_global_memo.pkl",
        _stack_global_via_memo(m("stack_global_memo.pkl")),
        "pickle",
        "STACK_GLOBAL operands hidden in the memo (MEMOIZE/POP/BINGET)",
    )
    add(
        "proto0_text.pkl",
        pickle.dumps(_Reduce(os.system, f"touch {m('proto0_text.pkl')}"), protocol=0),
        "pickle",
        "protocol 0 text pickle, os.system",
    )
    add(
        "getattr_chain.pkl",
        _getattr_chain(m("getattr_chain.pkl")),
        "pickle",
        "getattr(__import__('os'), 'system') REDUCE chain",
    )
    add(
        "torch_zip.pt",
        _torch_zip(pickle.dumps(_Reduce(os.system, f"touch {m('torch_zip.pt')}"), protocol=2)),
        "torch-zip",
        "PyTorch zip whose archive/data.pkl calls os.system",
    )
    inner = _torch_zip(pickle.dumps(_Reduce(exec, _touch_code(m("nested_zip.zip"))), protocol=4), "inner")
    outer = io.BytesIO()
    with zipfile.ZipFile(outer, "w") as zf:
        zf.writestr("README.txt", "weights inside")
        zf.writestr("checkpoints/inner.pt", inner)
    add("nested_zip.zip", outer.getvalue(), "nested-zip", "zip inside a zip; the inner data.pkl calls exec")
    npy = io.BytesIO()
    np.save(npy, np.array([_Reduce(os.system, f"touch {m('object_array.npy')}")], dtype=object), allow_pickle=True)
    add("object_array.npy", npy.getvalue(), "npy", "NumPy object array whose payload calls os.system")
    add(
        "legacy_torch.bin",
        _legacy_torch(pickle.dumps(_Reduce(os.system, f"touch {m('legacy_torch.bin')}"), protocol=2)),
        "legacy",
        "legacy torch.save: fourth consecutive pickle calls os.system",
    )
    add(
        "tokenizer.json",
        pickle.dumps(_Reduce(exec, _touch_code(m("tokenizer.json"))), protocol=4),
        "pickle",
        "a pickle named like a JSON file",
    )

    add(
        "dict_of_lists.pkl",
        pickle.dumps({"a": [1, 2, 3], "b": [[4.0], ["x"]]}, protocol=4),
        "pickle",
        "dict of lists",
        hostile=False,
    )
    add(
        "ordered_dict.pkl",
        pickle.dumps(OrderedDict(w=[1, 2], b=(3,)), protocol=2),
        "pickle",
        "collections.OrderedDict",
        hostile=False,
    )
    add(
        "safe_torch.pt",
        _torch_zip(_safe_torch_pickle()),
        "torch-zip",
        "torch-style zip with only safe rebuild globals",
        hostile=False,
    )
    plain = io.BytesIO()
    np.save(plain, np.arange(6, dtype=np.float32).reshape(2, 3))
    add("plain_array.npy", plain.getvalue(), "npy", "float32 NumPy array", hostile=False)
    return files


# Loads each (kind, path) pair given on the command line the way a victim would; run it only in a
# throw-away subprocess, and only on files built by `build_corpus`.
LOADER_SCRIPT = r"""
import io, pickle, sys, zipfile
import numpy as np

def load(kind, path):
    data = open(path, 'rb').read()
    if kind == 'pickle':
        pickle.loads(data)
    elif kind == 'torch-zip':
        pickle.loads(zipfile.ZipFile(path).read('archive/data.pkl'))
    elif kind == 'nested-zip':
        inner = zipfile.ZipFile(io.BytesIO(zipfile.ZipFile(path).read('checkpoints/inner.pt')))
        pickle.loads(inner.read('inner/data.pkl'))
    elif kind == 'npy':
        np.load(path, allow_pickle=True)
    elif kind == 'legacy':
        f = io.BytesIO(data)
        for _ in range(4):
            pickle.load(f)

args = sys.argv[1:]
for kind, path in zip(args[::2], args[1::2]):
    try:
        load(kind, path)
    except Exception as exc:
        print(path, exc)
"""
