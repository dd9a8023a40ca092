"""Where a run was computed: recorded with it, shown in its report, compared by `reproduce`.

A run's identity (`Target.describe()`: model, template, llama.cpp build, batch size) says which
answers belong together. This record adds what a reviewer comparing two runs needs to see but what
does not by itself change an answer (or is not known to): the host's CPU and the instruction sets it
offers, threads, the load seed, Python. A native llama.cpp build takes its kernels from the host
CPU, so for such a build the host is what tells two runs apart.
"""

from __future__ import annotations

import platform
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from weighbridge.domain import GenerationParams
from weighbridge.targets.base import Target

# Host CPU flags that change which kernels a native llama.cpp build (or torch) uses.
ISA_FLAGS = (
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "bmi2",
    "avx_vnni",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_vbmi",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
)


def parse_cpuinfo(text: str) -> dict[str, Any]:
    """CPU model and the ISA flags of interest from /proc/cpuinfo's first processor."""
    model = ""
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not model:
            model = value.strip()
        elif key in ("flags", "Features") and not flags:
            flags = set(value.split())
    return {"cpu": model, "isa": [f for f in ISA_FLAGS if f in flags]}


def host_info() -> dict[str, Any]:
    info: dict[str, Any] = {"machine": platform.machine(), "system": platform.system(), "cpu": platform.processor()}
    try:
        info.update(parse_cpuinfo(Path("/proc/cpuinfo").read_text("utf-8", "replace")))
    except OSError:
        info["isa"] = []
    return info


def run_environment(target: Target, params: GenerationParams) -> dict[str, Any]:
    """The record stored with a run (and a reproduction): identity, runtime, host, seeds."""
    runtime = getattr(target, "runtime", None)
    return {
        "target": target.describe(),
        "runtime": runtime() if callable(runtime) else {"batch_size": target.batch_size},
        "seed": params.seed,
        "host": host_info(),
        "python": platform.python_version(),
    }


def differences(a: Mapping[str, Any], b: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Dotted paths whose values differ between two environment records (for reports)."""
    out: list[str] = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        path = f"{prefix}{key}"
        if isinstance(va, Mapping) and isinstance(vb, Mapping):
            out += differences(va, vb, path + ".")
        elif va != vb:
            out.append(path)
    return out
